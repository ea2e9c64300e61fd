"""Where a tenant's identity provider may make the platform connect: every call (discovery,
token, JWKS, UserInfo) goes through the outbound guard, checked when configuring and
again when connecting. The provider in tests/sso/op.py speaks http on 127.0.0.1, allowed
by SSO_ALLOW_LOOPBACK_HTTP; https to loopback and private addresses stays refused."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.sso.models import IdentityProvider
from tests.conftest import ADMIN_PASSWORD
from tests.core.listener import counting_listener
from tests.sso.conftest import CLIENT_REDIRECT, counts, sso_failures

pytestmark = pytest.mark.django_db

URL = "/api/v1/identity-providers"


@pytest.fixture
def admin_token(tenant_a, api_a) -> str:
    return api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"]


def _create(api_a, op, admin_token):
    body = {
        "slug": "corp",
        "name": "Corp IdP",
        "issuer": op.issuer,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "redirect_uris": [CLIENT_REDIRECT],
        "jit_enabled": True,
    }
    return api_a.call("post", URL, body, token=admin_token)


@pytest.mark.parametrize("key", ["token_endpoint", "jwks_uri", "userinfo_endpoint"])
@pytest.mark.parametrize(
    "endpoint",
    [
        # a host of the provider to urlsplit, 127.0.0.1 / cloud metadata to requests;
        # such a name resolves nowhere, which the old check let through
        "https://127.0.0.1\\.idp.corp.test/endpoint",
        "https://169.254.169.254\\.idp.corp.test/endpoint",
    ],
)
def test_discovered_endpoints_the_http_client_reads_differently_are_refused(
    tenant_a, api_a, op, admin_token, settings, key, endpoint
):
    settings.SSO_ALLOW_PRIVATE_ADDRESSES = False
    op.switches.discovery_endpoints = {key: endpoint}

    response = _create(api_a, op, admin_token)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    detail = response.json()["error"]["details"]["issuer"][0]
    assert detail.startswith(f"discovery_invalid: {key} is not acceptable")
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.exists()


def test_discovered_endpoints_whose_names_do_not_resolve_are_refused(
    tenant_a, api_a, op, admin_token
):
    op.switches.discovery_endpoints = {"jwks_uri": "https://keys.idp.invalid/jwks"}

    response = _create(api_a, op, admin_token)

    assert response.status_code == 422, response.content
    assert "does not resolve" in response.json()["error"]["details"]["issuer"][0]
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.exists()


@pytest.mark.parametrize("key", ["token_endpoint", "jwks_uri", "userinfo_endpoint"])
def test_an_endpoint_that_now_leads_to_this_machine_is_refused_when_connecting(
    tenant_a, api_a, op, admin_token, settings, sign_in, key
):
    # given a provider configured while its endpoints were acceptable, whose endpoint's
    # name now resolves to 127.0.0.1 (here: is `localhost`) over https
    settings.SSO_ALLOW_PRIVATE_ADDRESSES = False
    op.switches.claims_in_userinfo_only = key == "userinfo_endpoint"
    assert _create(api_a, op, admin_token).status_code == 201
    before = counts(tenant_a)
    with counting_listener() as listener:
        with tenant_context(tenant_a.tenant):
            provider = IdentityProvider.objects.get(slug="corp")
            provider.metadata[key] = f"https://localhost:{listener.port}/{key}"
            provider.save()
        # when someone signs in
        result = sign_in.run()
    # then the platform never connected there, and the sign-in failed cleanly
    assert listener.connections == 0
    assert result == {"error": "address_not_allowed"}
    assert counts(tenant_a) == before
    failure = sso_failures(tenant_a)[-1]
    assert failure["reason"] == "address_not_allowed"
    assert "localhost leads to an address that is not allowed" in failure["detail"]


def test_private_addresses_are_reached_when_allowed(
    tenant_a, api_a, op, admin_token, settings, sign_in
):
    # the control: with SSO_ALLOW_PRIVATE_ADDRESSES on, the same call is made (and fails
    # on the listener, which speaks no TLS)
    settings.SSO_ALLOW_PRIVATE_ADDRESSES = True
    assert _create(api_a, op, admin_token).status_code == 201
    with counting_listener() as listener:
        with tenant_context(tenant_a.tenant):
            provider = IdentityProvider.objects.get(slug="corp")
            provider.metadata["token_endpoint"] = f"https://localhost:{listener.port}/token"
            provider.save()
        result = sign_in.run()
    assert listener.connections == 1
    assert result == {"error": "provider_unavailable"}
