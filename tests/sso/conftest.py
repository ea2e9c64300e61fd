from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.jobs.models import OutboxEvent
from apps.sso.models import ExchangeCode, ExternalIdentity, IdentityProvider
from apps.sso.services.providers import provider_create
from tests.accounts.conftest import Api, api_a, api_b, member_a  # noqa: F401
from tests.sso.op import OpenIDProvider

CLIENT_REDIRECT = "https://app.example.test/sso/done"


@pytest.fixture
def op(settings: Any) -> Iterator[OpenIDProvider]:
    settings.SSO_ALLOW_LOOPBACK_HTTP = True  # the provider below speaks http on 127.0.0.1
    provider = OpenIDProvider(
        claims={
            "sub": "op-user-1",
            "email": "pat@corp.test",
            "email_verified": True,
            "name": "Pat Example",
            "preferred_username": "pat",
        }
    ).start()
    yield provider
    provider.stop()


@pytest.fixture
def make_provider(tenant_a, op):
    def make(**overrides: Any) -> IdentityProvider:
        data = {
            "slug": "corp",
            "name": "Corp IdP",
            "issuer": op.issuer,
            "client_id": op.client_id,
            "client_secret": op.client_secret,
            "redirect_uris": [CLIENT_REDIRECT],
            **overrides,
        }
        with tenant_context(tenant_a.tenant):
            return provider_create(data=data)

    return make


@dataclass
class SignIn:
    """The browser's trip: our /authorize, the provider's /authorize, our /callback."""

    api: Api

    def start(self, slug: str = "corp", redirect_uri: str = CLIENT_REDIRECT) -> Any:
        return self.api.client.get(
            f"/api/v1/auth/oidc/{slug}/authorize",
            {"redirect_uri": redirect_uri},
            HTTP_HOST=self.api.host,
        )

    def to_provider(self, slug: str = "corp") -> str:
        """The callback URL the provider sends the browser to."""
        started = self.start(slug)
        assert started.status_code == 302, started.content
        answer = requests.get(started["Location"], allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return str(answer.headers["Location"])

    def callback(self, url: str) -> Any:
        parts = urlsplit(url)
        return self.api.client.get(f"{parts.path}?{parts.query}", HTTP_HOST=self.api.host)

    def run(self, slug: str = "corp") -> dict[str, str]:
        """The query the client's redirect_uri is called with at the end."""
        done = self.callback(self.to_provider(slug))
        assert done.status_code == 302, done.content
        location = done["Location"]
        assert location.startswith(CLIENT_REDIRECT + "?"), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str) -> Any:
        return self.api.call("post", "/api/v1/auth/oidc/exchange", {"code": code})


@pytest.fixture
def sign_in(api_a: Api) -> SignIn:  # noqa: F811
    return SignIn(api_a)


def counts(tenant) -> dict[str, int]:
    with tenant_context(tenant.tenant):
        return {
            "users": User.objects.count(),
            "identities": ExternalIdentity.objects.count(),
            "codes": ExchangeCode.objects.count(),
        }


def sso_failures(tenant) -> list[dict[str, Any]]:
    with tenant_context(tenant.tenant):
        return [
            e.data
            for e in OutboxEvent.objects.filter(event_type="auth.sso_failed").order_by(
                "occurred_at", "id"
            )
        ]
