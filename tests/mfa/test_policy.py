"""The tenant's MFA policy: its setting, the grace period, enrolment at sign-in, exemptions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import tenant_context

from apps.mfa.models import Factor
from apps.rbac.models import Role, RoleAssignment
from apps.sso.models import IdentityProvider
from apps.tenants.models import Tenant
from tests.conftest import ADMIN_PASSWORD
from tests.mfa.conftest import FACTORS, ME
from tests.mfa.flows import login, verify

pytestmark = pytest.mark.django_db

TENANT = "/api/v1/tenant"


def _owner_token(api_a, tenant_a) -> str:
    return api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"]


def _set_policy(api_a, tenant_a, policy, token: str | None = None) -> None:
    token = token or _owner_token(api_a, tenant_a)
    response = api_a.call("patch", TENANT, {"settings": {"mfa": policy}}, token=token)
    assert response.status_code == 200, response.content


def _age(user, tenant_a, days: int) -> None:
    with tenant_context(tenant_a.tenant):
        type(user).objects.filter(pk=user.pk).update(
            created_at=timezone.now() - timedelta(days=days)
        )


def _age_policy(tenant_a, days: int) -> None:
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    since = timezone.now() - timedelta(days=days)
    tenant.settings["mfa"]["enforced_since"] = since.isoformat()
    tenant.save(update_fields=["settings"])


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "always"},
        {"mode": "required_for_permissions"},
        {"mode": "required_for_permissions", "permissions": ["no.such"]},
        {"mode": "required", "grace_days": -1},
        {"mode": "required", "grace_days": "7"},
        {"mode": "required", "sso_amr_exempt": "yes"},
        {"mode": "required", "colour": "red"},
        "required",
    ],
)
def test_a_bad_policy_is_422_and_nothing_is_saved(api_a, tenant_a, bad) -> None:
    token = _owner_token(api_a, tenant_a)
    before = Tenant.objects.get(pk=tenant_a.tenant.pk).settings
    response = api_a.call("patch", TENANT, {"settings": {"mfa": bad}}, token=token)
    assert response.status_code == 422, response.content
    assert "settings" in response.json()["error"]["details"]
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).settings == before


def test_the_policy_is_read_and_written_with_the_tenant(api_a, tenant_a) -> None:
    token = _owner_token(api_a, tenant_a)
    policy = {"mode": "required", "grace_days": 3, "enforced_since": "2001-01-01T00:00:00Z"}
    response = api_a.call("patch", TENANT, {"settings": {"mfa": policy}}, token=token)
    assert response.status_code == 200
    stored = api_a.call("get", TENANT, token=token).json()["data"]["settings"]["mfa"]
    assert stored["mode"] == "required" and stored["grace_days"] == 3
    since = parse_datetime(stored["enforced_since"])
    assert since is not None and abs((timezone.now() - since).total_seconds()) < 60

    # The same mode again keeps the stamp; another mode moves it.
    api_a.call("patch", TENANT, {"settings": {"mfa": {**stored, "grace_days": 5}}}, token=token)
    kept = api_a.call("get", TENANT, token=token).json()["data"]["settings"]["mfa"]
    assert kept["enforced_since"] == stored["enforced_since"] and kept["grace_days"] == 5


def test_within_the_grace_period_sign_in_says_by_when_to_enrol(api_a, member_a, tenant_a) -> None:
    _set_policy(api_a, tenant_a, {"mode": "required", "grace_days": 7})
    answer = login(api_a, member_a.email)
    assert answer["mfa_enrolment_required"] is True
    enrol_by = parse_datetime(answer["mfa_enrol_by"])
    assert enrol_by is not None
    assert abs((enrol_by - (timezone.now() + timedelta(days=7))).total_seconds()) < 60
    assert api_a.call("get", ME, token=answer["access_token"]).status_code == 200


def test_after_the_grace_period_the_token_may_only_enrol(
    api_a, member_a, tenant_a, totp_clock
) -> None:
    _set_policy(api_a, tenant_a, {"mode": "required", "grace_days": 7})
    _age_policy(tenant_a, 8)
    _age(member_a, tenant_a, 30)

    pending = login(api_a, member_a.email)
    assert pending["mfa_required"] is True and pending["enrolment_required"] is True
    assert pending["factors"] == []
    token = pending["mfa_token"]
    # Nothing else works with it.
    assert api_a.call("get", ME, token=token).status_code == 401
    assert (
        api_a.call("post", FACTORS, {"type": "totp", "name": "x"}, token=token).status_code == 401
    )
    assert verify(api_a, token, code="123456").status_code == 409

    created = api_a.call(
        "post", "/api/v1/auth/mfa/enrol", {"mfa_token": token, "type": "totp", "name": "Phone"}
    )
    assert created.status_code == 201, created.content
    setup = created.json()["data"]
    confirmed = api_a.call(
        "post",
        "/api/v1/auth/mfa/enrol/confirm",
        {"mfa_token": token, "factor_id": setup["id"], "code": totp_clock.code(setup["secret"])},
    )
    assert confirmed.status_code == 200, confirmed.content
    assert len(confirmed.json()["data"]["recovery_codes"]) == 10
    # Enrolled: the token cannot enrol another factor.
    more = api_a.call(
        "post", "/api/v1/auth/mfa/enrol", {"mfa_token": token, "type": "totp", "name": "2nd"}
    )
    assert more.status_code == 401

    totp_clock.advance(30)
    done = verify(api_a, token, code=totp_clock.code(setup["secret"]))
    assert done.status_code == 200, done.content
    assert api_a.call("get", ME, token=done.json()["data"]["access_token"]).status_code == 200


def test_an_ordinary_challenge_cannot_enrol_a_factor(api_a, member_a, tenant_a, totp_clock) -> None:
    # Someone with the password only must not get past the second factor by adding their own.
    from tests.mfa.flows import enrol_totp

    enrol_totp(api_a, api_a.login(member_a.email)["access_token"], totp_clock)
    pending = login(api_a, member_a.email)
    refused = api_a.call(
        "post",
        "/api/v1/auth/mfa/enrol",
        {"mfa_token": pending["mfa_token"], "type": "totp", "name": "Attacker"},
    )
    assert refused.status_code == 401
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(user=member_a).count() == 1


def test_permissions_mode_requires_it_of_holders_only(api_a, member_a, staff_a, tenant_a) -> None:
    owner = _owner_token(api_a, tenant_a)  # the owner holds every permission: signed in first
    _set_policy(
        api_a,
        tenant_a,
        {"mode": "required_for_permissions", "permissions": ["users.manage"], "grace_days": 0},
        token=owner,
    )
    plain = login(api_a, member_a.email)
    assert "access_token" in plain and "mfa_enrolment_required" not in plain
    holder = login(api_a, staff_a.email)
    assert holder["mfa_required"] is True and holder["enrolment_required"] is True

    # The grace period counts from the grant, not from the policy alone.
    _set_policy(
        api_a,
        tenant_a,
        {"mode": "required_for_permissions", "permissions": ["roles.view"], "grace_days": 2},
        token=owner,
    )
    _age_policy(tenant_a, 10)
    with tenant_context(tenant_a.tenant):
        role = Role.objects.create(name="Viewer", permissions=["roles.view"])
        RoleAssignment.objects.create(user=member_a, role=role)
    fresh_grant = login(api_a, member_a.email)
    assert fresh_grant["mfa_enrolment_required"] is True


def test_break_glass_users_are_exempt(api_a, member_a, tenant_a) -> None:
    _set_policy(api_a, tenant_a, {"mode": "required", "grace_days": 0})
    _age(member_a, tenant_a, 30)
    with tenant_context(tenant_a.tenant):
        provider = IdentityProvider.objects.create(
            slug="corp", name="Corp", issuer="https://idp.example.test", client_id="c"
        )
        provider.break_glass_users.add(member_a)
    answer = login(api_a, member_a.email)
    assert "access_token" in answer and "mfa_enrolment_required" not in answer
