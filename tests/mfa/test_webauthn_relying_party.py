"""Which relying party (RP id, origins, name) a request gets, and a key enrolled under a
configured parent domain signing in through the API."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from apps.mfa.webauthn_flows import relying_party
from tests.mfa.flows import login, verify
from tests.mfa.test_webauthn_api import enrol_key, origin, sign_in_options

pytestmark = pytest.mark.django_db


def _request(host: str):
    return RequestFactory().get("/", HTTP_HOST=host)


def test_the_rp_id_is_the_host_the_client_used(settings) -> None:
    settings.PLATFORM_URL_SCHEME = "https"
    settings.MFA_WEBAUTHN_RP_ID = ""
    settings.MFA_WEBAUTHN_ORIGINS = []
    party = relying_party(_request("alpha.localhost:8443"))
    assert party.id == "alpha.localhost"
    assert party.origins == ["https://alpha.localhost:8443"]


def test_a_configured_parent_domain_is_used_only_by_hosts_under_it(settings) -> None:
    settings.MFA_WEBAUTHN_RP_ID = "Localhost"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "notlocalhost"]
    assert relying_party(_request("alpha.localhost")).id == "localhost"
    assert relying_party(_request("localhost")).id == "localhost"
    # A browser would refuse an RP id that is not the page's host or a parent of it.
    assert relying_party(_request("notlocalhost")).id == "notlocalhost"
    assert relying_party(_request("testserver")).id == "testserver"


def test_http_origins_only_while_the_platform_speaks_http(settings) -> None:
    settings.MFA_WEBAUTHN_ORIGINS = ["https://app.example.com", "https://alpha.localhost"]
    settings.PLATFORM_URL_SCHEME = "http"
    assert relying_party(_request("alpha.localhost")).origins == [
        "https://alpha.localhost",
        "http://alpha.localhost",
        "https://app.example.com",
    ]
    settings.PLATFORM_URL_SCHEME = "https"
    assert "http://alpha.localhost" not in relying_party(_request("alpha.localhost")).origins


def test_the_rp_name_is_the_setting_else_the_tenant(settings, tenant_a) -> None:
    from django_tenants.utils import tenant_context

    settings.MFA_WEBAUTHN_RP_NAME = ""
    with tenant_context(tenant_a.tenant):
        assert relying_party(_request(tenant_a.host)).name == tenant_a.tenant.name
        # Without a request (a shell, a task): the tenant's primary domain.
        assert relying_party().id == tenant_a.host
    settings.MFA_WEBAUTHN_RP_NAME = "Acme Platform"
    assert relying_party(_request(tenant_a.host)).name == "Acme Platform"


def test_a_key_under_the_parent_rp_id_signs_in(settings, api_a, member_a) -> None:
    settings.MFA_WEBAUTHN_RP_ID = "localhost"
    enrolled = enrol_key(api_a, api_a.login(member_a.email)["access_token"])
    [stored] = enrolled.key.credentials.values()
    assert stored.rp_id == "localhost"
    pending = login(api_a, member_a.email)
    options = sign_in_options(api_a, pending["mfa_token"])
    assert options["rpId"] == "localhost"
    credential = enrolled.key.get(options, origin(api_a))
    assert verify(api_a, pending["mfa_token"], "webauthn", credential=credential).status_code == 200

    # The setting removed: the host's own RP id, which the key was not made for.
    settings.MFA_WEBAUTHN_RP_ID = ""
    pending = login(api_a, member_a.email)
    options = sign_in_options(api_a, pending["mfa_token"])
    credential = enrolled.key.get(options, origin(api_a), rp_id="localhost")
    assert verify(api_a, pending["mfa_token"], "webauthn", credential=credential).status_code == 401
