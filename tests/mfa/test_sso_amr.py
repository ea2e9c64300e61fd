"""Sign-ins through an identity provider and MFA: the session's `amr`, the tenant's
`sso_amr_exempt`, the platform's second factor when the provider's is not trusted, and the
same rules in the admin. Over a real OpenID provider on loopback (tests/sso/op.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session
from apps.jobs.models import OutboxEvent
from apps.rbac.models import Role, RoleAssignment
from apps.sso.models import ExternalIdentity
from apps.tenants.services import tenant_update
from tests.accounts.factories import make_user
from tests.mfa.conftest import VERIFY
from tests.mfa.factories import code_at, totp_factor
from tests.sso.conftest import SignIn

pytestmark = pytest.mark.django_db

SECOND = "/admin/login/second-factor/"


def _policy(tenant_a, **mfa: Any) -> None:
    tenant_update(
        tenant=tenant_a.tenant,
        tenant_settings={**tenant_a.tenant.settings, "mfa": {"mode": "optional", **mfa}},
    )


@pytest.fixture
def pat(tenant_a, op, make_provider):
    """The provider's user, linked, holding the tenant's admin role."""
    provider = make_provider()
    with tenant_context(tenant_a.tenant):
        user = make_user(email="pat@corp.test", username="pat", is_staff=True)
        RoleAssignment.objects.create(user=user, role=Role.objects.get(system_key="admin"))
        ExternalIdentity.objects.create(
            provider=provider, issuer=op.issuer, subject="op-user-1", user=user
        )
    return user


def _exchanged(sign_in: SignIn) -> dict[str, Any]:
    response = sign_in.exchange(sign_in.run()["code"])
    assert response.status_code == 200, response.content
    return dict(response.json()["data"])


def _claims(access_token: str) -> dict[str, Any]:
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


def _grant(api_a, token: str, tenant_a, email: str = "grantee@alpha.test") -> Any:
    with tenant_context(tenant_a.tenant):
        other = make_user(email=email, username=email.split("@")[0])
        role, _ = Role.objects.get_or_create(
            name="Viewers", defaults={"permissions": ["users.view"]}
        )
    return api_a.call("post", f"/api/v1/users/{other.pk}/roles", {"role_id": role.pk}, token=token)


def test_a_trusted_provider_mfa_lets_the_user_in_and_counts_for_step_up(
    tenant_a,
    api_a,
    op,
    pat,
    sign_in,
):
    # given a tenant that trusts its provider's MFA, a user with a platform factor, and a
    # provider that says it did MFA
    _policy(tenant_a, sso_amr_exempt=True)
    with tenant_context(tenant_a.tenant):
        totp_factor(pat)
    op.claims["amr"] = ["pwd", "mfa"]
    # when they sign in through it
    pair = _exchanged(sign_in)
    # then a session at once, whose token says how, and a sensitive write needs no step-up
    assert "mfa_required" not in pair
    claims = _claims(pair["access_token"])
    assert claims["amr"] == ["ext", "pwd", "mfa"]
    assert _grant(api_a, pair["access_token"], tenant_a).status_code == 201
    with tenant_context(tenant_a.tenant):
        event = OutboxEvent.objects.filter(event_type="auth.sso_login").latest("occurred_at")
    assert event.data["provider_amr"] == ["pwd", "mfa"]


@pytest.mark.parametrize("value", ["otp", "hwk", "swk", "fpt", "face", "sc"])
def test_each_second_factor_value_of_the_provider_counts(
    tenant_a,
    op,
    pat,
    sign_in,
    value,
):
    _policy(tenant_a, sso_amr_exempt=True)
    with tenant_context(tenant_a.tenant):
        totp_factor(pat)
    op.claims["amr"] = ["pwd", value]
    assert "mfa_required" not in _exchanged(sign_in)


def test_an_untrusted_provider_mfa_is_not_carried_and_does_not_pass_step_up(
    tenant_a,
    api_a,
    op,
    pat,
    sign_in,
):
    # the tenant does not exempt SSO; the user has no platform factor, none is required
    _policy(tenant_a, sso_amr_exempt=False)
    op.claims["amr"] = ["pwd", "mfa"]
    pair = _exchanged(sign_in)
    assert _claims(pair["access_token"])["amr"] == ["ext"]
    # once they have a factor, a sensitive write wants it (the provider's "mfa" is not it)
    with tenant_context(tenant_a.tenant):
        totp_factor(pat)
    refused = _grant(api_a, pair["access_token"], tenant_a)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "MFA_REQUIRED"


def test_an_untrusted_provider_sends_a_user_with_a_factor_through_the_platforms(
    tenant_a, api_a, op, pat, sign_in, totp_clock
):
    _policy(tenant_a, sso_amr_exempt=False)
    with tenant_context(tenant_a.tenant):
        _, secret = totp_factor(pat)
    op.claims["amr"] = ["pwd", "mfa"]
    # the exchange answers with a challenge, not tokens
    pending = _exchanged(sign_in)
    assert pending["mfa_required"] is True and "access_token" not in pending
    assert pending["factors"] == ["totp"]
    wrong = api_a.call(
        "post",
        VERIFY,
        {
            "mfa_token": pending["mfa_token"],
            "method": "totp",
            "code": "000000" if totp_clock.code(secret) != "000000" else "111111",
        },
    )
    assert wrong.status_code == 401
    done = api_a.call(
        "post",
        VERIFY,
        {"mfa_token": pending["mfa_token"], "method": "totp", "code": totp_clock.code(secret)},
    )
    assert done.status_code == 200, done.content
    token = done.json()["data"]["access_token"]
    assert _claims(token)["amr"] == ["ext", "otp"]
    # and that counts as a recent second factor
    assert _grant(api_a, token, tenant_a).status_code == 201


def test_trusted_but_without_provider_mfa_the_platform_factor_is_asked(tenant_a, op, pat, sign_in):
    _policy(tenant_a, sso_amr_exempt=True)
    with tenant_context(tenant_a.tenant):
        totp_factor(pat)
    op.claims["amr"] = ["pwd"]
    assert _exchanged(sign_in)["mfa_required"] is True


def test_the_policy_requirement_is_met_by_a_trusted_provider_mfa(tenant_a, op, pat, sign_in):
    # required of everyone, no grace left, the user has no platform factor
    _policy(tenant_a, mode="required", grace_days=0, sso_amr_exempt=True)
    op.claims["amr"] = ["mfa"]
    pair = _exchanged(sign_in)
    assert "mfa_required" not in pair and "mfa_enrolment_required" not in pair
    assert _claims(pair["access_token"])["amr"] == ["ext", "mfa"]


def test_the_policy_requirement_without_exemption_means_enrolling(tenant_a, op, pat, sign_in):
    _policy(tenant_a, mode="required", grace_days=0, sso_amr_exempt=False)
    op.claims["amr"] = ["mfa"]
    pending = _exchanged(sign_in)
    assert pending["mfa_required"] is True
    assert pending["enrolment_required"] is True


def test_a_provider_without_mfa_values_gives_ext_alone(tenant_a, op, pat, sign_in):
    _policy(tenant_a, sso_amr_exempt=True)
    op.claims["amr"] = ["pwd", "<script>", 7, "x" * 100]
    pair = _exchanged(sign_in)
    assert _claims(pair["access_token"])["amr"] == ["ext", "pwd"]


# ------------------------------------------------------------------ the admin


def _admin_through_the_provider(client: Any, host: str) -> Any:
    started = client.get("/admin/sso/corp/login?next=/admin/", HTTP_HOST=host)
    assert started.status_code == 302, started.content
    answer = requests.get(started["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}", HTTP_HOST=host)


def test_admin_sso_of_staff_with_a_factor_asks_for_it_unless_trusted(
    tenant_a,
    api,
    op,
    pat,
):
    with tenant_context(tenant_a.tenant):
        _, secret = totp_factor(pat)
    op.claims["amr"] = ["pwd", "mfa"]
    # not trusted: the code is asked before the admin session exists
    _policy(tenant_a, sso_amr_exempt=False)
    done = _admin_through_the_provider(api, tenant_a.host)
    assert done.status_code == 302 and done["Location"] == SECOND
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 302
    finished = api.post(
        SECOND, {"code": code_at(secret)}, format="multipart", HTTP_HOST=tenant_a.host
    )
    assert finished.status_code == 302 and finished["Location"] == "/admin/"
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 200
    api.post("/admin/logout/", HTTP_HOST=tenant_a.host)
    # trusted: the provider's MFA is enough
    _policy(tenant_a, sso_amr_exempt=True)
    again = _admin_through_the_provider(api, tenant_a.host)
    assert again.status_code == 302 and again["Location"] == "/admin/"
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 200


def test_admin_sso_trusted_but_without_provider_mfa_asks_for_the_code(
    tenant_a,
    api,
    op,
    pat,
):
    with tenant_context(tenant_a.tenant):
        totp_factor(pat)
    _policy(tenant_a, sso_amr_exempt=True)
    op.claims["amr"] = ["pwd"]
    done = _admin_through_the_provider(api, tenant_a.host)
    assert done["Location"] == SECOND
    assert api.get("/admin/", HTTP_HOST=tenant_a.host).status_code == 302


def test_the_providers_mfa_counts_for_step_up_only_within_the_window(
    tenant_a, api_a, op, pat, sign_in
):
    _policy(tenant_a, mode="required", grace_days=0, sso_amr_exempt=True)
    op.claims["amr"] = ["pwd", "mfa"]
    pair = _exchanged(sign_in)
    with tenant_context(tenant_a.tenant):
        Session.objects.filter(pk=_claims(pair["access_token"])["sid"]).update(
            auth_time=timezone.now() - timedelta(minutes=11)
        )
    refreshed = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    token = refreshed.json()["data"]["access_token"]
    refused = _grant(api_a, token, tenant_a)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "MFA_REQUIRED"
    assert "Sign in again through your organization's identity provider" in error["message"]
    # a new sign-in through the provider is the step-up
    fresh = _exchanged(sign_in)["access_token"]
    assert _grant(api_a, fresh, tenant_a, email="second@alpha.test").status_code == 201
