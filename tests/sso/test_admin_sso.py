"""Staff sign into the tenant's Django admin through its identity provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django_tenants.utils import tenant_context

from apps.sso.models import ExternalIdentity, IdentityProvider
from tests.accounts.factories import make_user
from tests.sso.conftest import counts, sso_failures

pytestmark = pytest.mark.django_db


def _through_the_provider(client: Any, host: str, next_path: str = "/admin/") -> Any:
    started = client.get(f"/admin/sso/corp/login?next={next_path}", HTTP_HOST=host)
    assert started.status_code == 302, started.content
    answer = requests.get(started["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/admin/sso/corp/callback"
    return client.get(f"{back.path}?{back.query}", HTTP_HOST=host)


def test_staff_signs_into_the_admin(tenant_a, api, make_provider):
    provider = make_provider(allow_email_linking=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat", is_staff=True, is_superuser=True)
    done = _through_the_provider(api, tenant_a.host, "/admin/sso/")
    assert done.status_code == 302 and done["Location"] == "/admin/sso/"
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert ExternalIdentity.objects.filter(provider=provider, subject="op-user-1").exists()


def test_not_staff_is_refused_and_nothing_is_linked(tenant_a, api, make_provider):
    make_provider(allow_email_linking=True, jit_enabled=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat")
    before = counts(tenant_a)
    done = _through_the_provider(api, tenant_a.host)
    assert done.status_code == 302 and done["Location"].startswith("/admin/login/")
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "not_staff"
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 302  # still signed out


def test_an_api_state_does_not_open_the_admin(tenant_a, api, make_provider, sign_in):
    make_provider(allow_email_linking=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat", is_staff=True)
    back = urlsplit(sign_in.to_provider())
    response = api.get(f"/admin/sso/corp/callback?{back.query}", HTTP_HOST=tenant_a.host)
    assert response.status_code == 400


def test_the_providers_page_lists_enabled_providers(tenant_a, api, make_provider):
    provider = make_provider()
    page = api.get("/admin/sso/", HTTP_HOST=tenant_a.host)
    assert page.status_code == 200
    assert b"Sign in with Corp IdP" in page.content
    with tenant_context(tenant_a.tenant):
        IdentityProvider.objects.filter(pk=provider.pk).update(enabled=False)
    assert b"Corp IdP" not in api.get("/admin/sso/", HTTP_HOST=tenant_a.host).content


def test_next_must_stay_in_the_admin(tenant_a, api, make_provider):
    make_provider(allow_email_linking=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat", is_staff=True)
    done = _through_the_provider(api, tenant_a.host, "https://evil.example.test/")
    assert done["Location"] == "/admin/"


def test_the_provider_admin_never_shows_the_secret(tenant_a, api, op, make_provider):
    provider = make_provider()
    with tenant_context(tenant_a.tenant):
        admin = make_user(
            email="boss@alpha.test", username="boss", is_staff=True, is_superuser=True
        )
        api.force_login(admin)
    page = api.get(f"/admin/sso/identityprovider/{provider.pk}/change/", HTTP_HOST=tenant_a.host)
    assert page.status_code == 200
    assert b"client_secret" in page.content
    assert op.client_secret.encode() not in page.content
    assert provider.client_secret_encrypted.encode() not in page.content
