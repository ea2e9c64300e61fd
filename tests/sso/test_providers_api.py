"""/api/v1/identity-providers: configuration, discovery checked, the secret write-only."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.sso.crypto import secret_decrypt
from apps.sso.models import IdentityProvider
from tests.accounts.factories import PASSWORD
from tests.conftest import ADMIN_PASSWORD
from tests.sso.conftest import CLIENT_REDIRECT

pytestmark = pytest.mark.django_db

URL = "/api/v1/identity-providers"


@pytest.fixture
def admin_token(tenant_a, api_a) -> str:
    return api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"]


def _body(op, **extra):
    return {
        "slug": "corp",
        "name": "Corp IdP",
        "issuer": op.issuer,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "redirect_uris": [CLIENT_REDIRECT],
        **extra,
    }


def test_create_keeps_the_secret_encrypted_and_never_returns_it(tenant_a, api_a, op, admin_token):
    response = api_a.call("post", URL, _body(op), token=admin_token)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert "client_secret" not in data and "client_secret_encrypted" not in data
    assert data["has_client_secret"] is True
    assert data["discovery"]["token_endpoint"] == f"{op.issuer}/token"
    assert data["scopes"] == ["openid", "email", "profile"]
    with tenant_context(tenant_a.tenant):
        stored = IdentityProvider.objects.get(slug="corp")
        assert op.client_secret not in stored.client_secret_encrypted
        assert secret_decrypt(stored.client_secret_encrypted) == op.client_secret
    listed = api_a.call("get", URL, token=admin_token)
    assert op.client_secret not in listed.content.decode()


def test_update_and_delete(tenant_a, api_a, op, admin_token):
    created = api_a.call("post", URL, _body(op), token=admin_token).json()["data"]
    path = f"{URL}/{created['id']}"
    updated = api_a.call(
        "patch", path, {"sso_required": True, "allowed_email_domains": ["@Corp.Test"]},
        token=admin_token,
    )  # fmt: skip
    assert updated.status_code == 200, updated.content
    assert updated.json()["data"]["sso_required"] is True
    assert updated.json()["data"]["allowed_email_domains"] == ["corp.test"]
    assert api_a.call("delete", path, token=admin_token).status_code == 204
    assert api_a.call("get", path, token=admin_token).status_code == 404


def test_issuer_whose_discovery_names_another_issuer_is_422(tenant_a, api_a, op, admin_token):
    op.switches.discovery_issuer = "https://impostor.example.test"
    response = api_a.call("post", URL, _body(op), token=admin_token)
    assert response.status_code == 422
    assert "issuer_mismatch" in response.json()["error"]["details"]["issuer"][0]
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.exists()


def test_issuer_that_is_down_is_422(tenant_a, api_a, op, admin_token):
    body = _body(op)
    op.stop()
    response = api_a.call("post", URL, body, token=admin_token)
    assert response.status_code == 422
    assert "provider_unavailable" in response.json()["error"]["details"]["issuer"][0]


def test_plain_http_issuer_elsewhere_than_loopback_is_422(api_a, op, admin_token):
    response = api_a.call(
        "post", URL, _body(op, issuer="http://idp.example.test"), token=admin_token
    )
    assert response.status_code == 422


def test_managing_providers_needs_tenant_manage(api_a, member_a, op):
    token = api_a.login(member_a.email, PASSWORD)["access_token"]
    response = api_a.call("post", URL, _body(op), token=token)
    assert response.status_code == 403
    assert "tenant.manage" in response.json()["error"]["message"]


def test_loopback_http_issuer_is_refused_unless_allowed(api_a, op, admin_token, settings):
    settings.SSO_ALLOW_LOOPBACK_HTTP = False
    response = api_a.call("post", URL, _body(op), token=admin_token)
    assert response.status_code == 422
    assert "issuer_invalid" in response.json()["error"]["details"]["issuer"][0]


@pytest.mark.parametrize(
    "issuer",
    [
        "https://127.0.0.1/realms/x",
        "https://localhost/realms/x",
        "https://10.1.2.3",
        "https://169.254.169.254/latest",  # cloud metadata
        "https://[::1]:8443",
    ],
)
def test_issuers_inside_the_platforms_network_are_refused(
    api_a, op, admin_token, settings, tenant_a, issuer
):
    settings.SSO_ALLOW_PRIVATE_ADDRESSES = False
    response = api_a.call("post", URL, {**_body(op), "issuer": issuer}, token=admin_token)
    assert response.status_code == 422, response.content
    assert "issuer_invalid" in response.json()["error"]["details"]["issuer"][0]
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.filter(issuer=issuer).exists()
