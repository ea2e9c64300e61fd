"""Step-up over the real API. A signed-in user verifies a factor again (the same session, a
fresh auth_time); and sensitive writes want a second factor verified in the last
MFA_STEP_UP_SECONDS (the access token's `amr` and `auth_time`), else 403 MFA_REQUIRED and
nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.mfa.models import Factor
from apps.mfa.step_up import mfa_recent
from apps.rbac.models import Role, RoleAssignment
from apps.sso.models import IdentityProvider
from apps.tenants.services import tenant_update
from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD, make_user
from tests.mfa.conftest import FACTORS, ME, VERIFY, TotpClock
from tests.mfa.factories import totp_factor
from tests.mfa.flows import Enrolled, claims, enrol_totp, login, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(api_a, member_a, totp_clock):
    """member_a signed in with password and TOTP an hour ago: (pair, secret)."""
    enrolled = enrol_totp(api_a, api_a.login(member_a.email)["access_token"], totp_clock)
    totp_clock.advance(30)
    pending = login(api_a, member_a.email)
    pair = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret)).json()["data"]
    totp_clock.advance(30)
    return pair, enrolled


def test_step_up_gives_the_same_session_a_fresh_auth_time(
    api_a, member_a, tenant_a, signed_in, totp_clock
) -> None:
    pair, enrolled = signed_in
    before = claims(pair["access_token"])
    an_hour_ago = timezone.now() - timedelta(hours=1)
    with tenant_context(tenant_a.tenant):
        Session.objects.filter(pk=before["sid"]).update(auth_time=an_hour_ago, amr=["pwd"])

    stepped = api_a.call(
        "post",
        VERIFY,
        {"method": "totp", "code": totp_clock.code(enrolled.secret)},
        token=pair["access_token"],
    )
    assert stepped.status_code == 200, stepped.content
    after = claims(stepped.json()["data"]["access_token"])
    assert after["sid"] == before["sid"]
    assert after["amr"] == ["pwd", "otp"]
    assert after["auth_time"] > an_hour_ago.timestamp() + 3000
    with tenant_context(tenant_a.tenant):
        assert Session.objects.filter(user=member_a, revoked_at=None).count() == 2  # enrol + mfa
        session = Session.objects.get(pk=before["sid"])
        assert session.amr == ["pwd", "otp"]
        assert session.auth_time is not None and session.auth_time > an_hour_ago

    # The new refresh token carries the session on with the new auth_time.
    refreshed = api_a.call(
        "post", "/api/v1/auth/refresh", {"refresh_token": stepped.json()["data"]["refresh_token"]}
    )
    assert claims(refreshed.json()["data"]["access_token"])["auth_time"] == after["auth_time"]
    assert api_a.call("get", ME, token=refreshed.json()["data"]["access_token"]).status_code == 200


def test_a_wrong_step_up_is_401_and_audited(api_a, tenant_a, signed_in) -> None:
    from apps.audit.models import AuditEvent

    pair, _ = signed_in
    wrong = api_a.call(
        "post", VERIFY, {"method": "totp", "code": "000000"}, token=pair["access_token"]
    )
    assert wrong.status_code == 401
    with tenant_context(tenant_a.tenant):
        assert AuditEvent.objects.filter(action="mfa.verification_failed").count() == 1


def test_step_up_needs_a_factor_and_a_signed_in_caller(api_a, member_a) -> None:
    anonymous = api_a.call("post", VERIFY, {"method": "totp", "code": "123456"})
    assert anonymous.status_code == 401
    token = api_a.login(member_a.email)["access_token"]
    without = api_a.call("post", VERIFY, {"method": "totp", "code": "123456"}, token=token)
    assert without.status_code == 409


# ------------------------------------------------------------------ enforcement

CHANGE = "/api/v1/auth/password/change"
NEW_PASSWORD = "another-long-password-43"
STEP_UP_MESSAGE = (
    "Confirm with your second factor (POST /api/v1/auth/mfa/verify) and retry; "
    "a factor verified in the last 10 minutes is needed."
)


def _refused(response: Any) -> None:
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "MFA_REQUIRED"
    assert error["message"] == STEP_UP_MESSAGE


def _signed_in_with_code(api: Api, user: User, enrolled: Enrolled, clock: TotpClock) -> dict:
    """A real two-step sign-in: password, then the app's code (the clock then moves on a step,
    so the next code is a new one)."""
    pending = login(api, user.email)
    assert pending["mfa_required"] is True
    answer = verify(api, pending["mfa_token"], code=clock.code(enrolled.secret))
    assert answer.status_code == 200, answer.content
    clock.advance(30)
    return dict(answer.json()["data"])


def _aged(tenant_a, api: Api, tokens: dict, seconds: int) -> dict:
    """The session's second factor `seconds` old: its auth_time moved back, then a refresh
    (which carries the session's amr and auth_time) gives the pair a client would hold."""
    sid = claims(tokens["access_token"])["sid"]
    with tenant_context(tenant_a.tenant):
        Session.objects.filter(pk=sid).update(auth_time=timezone.now() - timedelta(seconds=seconds))
    refreshed = api.call("post", "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.content
    return dict(refreshed.json()["data"])


def _step_up(api: Api, token: str, code: str) -> dict:
    response = api.call("post", VERIFY, {"method": "totp", "code": code}, token=token)
    assert response.status_code == 200, response.content
    return dict(response.json()["data"])


def _password_is(tenant_a, user: User, password: str) -> bool:
    with tenant_context(tenant_a.tenant):
        return User.objects.get(pk=user.pk).check_password(password)


def _enrolled(api: Api, user: User, clock: TotpClock) -> Enrolled:
    """`user` signs in with the password and enrols a TOTP app (the clock then moves on)."""
    enrolled = enrol_totp(api, api.login(user.email)["access_token"], clock)
    clock.advance(30)
    return enrolled


@pytest.fixture
def member_enrolled(api_a, member_a, totp_clock) -> Enrolled:
    return _enrolled(api_a, member_a, totp_clock)


@pytest.fixture
def staff_enrolled(api_a, staff_a, totp_clock) -> Enrolled:
    return _enrolled(api_a, staff_a, totp_clock)


# ------------------------------------------------------------------ password change


def test_password_change_is_refused_without_a_recent_factor_then_passes_after_step_up(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    assert claims(stale["access_token"])["amr"] == ["pwd", "otp"]
    # when the password is changed with a token whose factor is 11 minutes old
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    _refused(api_a.call("post", CHANGE, body, token=stale["access_token"]))
    # then nothing changed
    assert _password_is(tenant_a, member_a, PASSWORD)
    # and after a step-up with the app's next code, the same request passes
    stepped = _step_up(api_a, stale["access_token"], totp_clock.code(member_enrolled.secret))
    assert claims(stepped["access_token"])["sid"] == claims(stale["access_token"])["sid"]
    changed = api_a.call("post", CHANGE, body, token=stepped["access_token"])
    assert changed.status_code == 200, changed.content
    assert _password_is(tenant_a, member_a, NEW_PASSWORD)


def test_a_fresh_two_step_sign_in_counts_as_recent(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api_a.call("post", CHANGE, body, token=tokens["access_token"]).status_code == 200


def test_the_window_ends_after_mfa_step_up_seconds(
    tenant_a, api_a, member_a, member_enrolled, totp_clock, settings
):
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    # 9 minutes: still inside the default 10
    inside = _aged(tenant_a, api_a, tokens, 9 * 60)
    assert claims(inside["access_token"])["auth_time"] <= timezone.now().timestamp() - 9 * 60
    # a shorter window set by the operator: the same token is now too old
    settings.MFA_STEP_UP_SECONDS = 300
    response = api_a.call("post", CHANGE, body, token=inside["access_token"])
    assert response.status_code == 403 and response.json()["error"]["code"] == "MFA_REQUIRED"
    assert "last 5 minutes" in response.json()["error"]["message"]
    settings.MFA_STEP_UP_SECONDS = 600
    assert api_a.call("post", CHANGE, body, token=inside["access_token"]).status_code == 200


def test_a_password_only_token_of_a_user_with_a_factor_is_refused(
    tenant_a, api_a, member_a, totp_clock
):
    # The token from before the factor was enrolled says ["pwd"]: no second factor at all.
    token = api_a.login(member_a.email)["access_token"]
    enrol_totp(api_a, token, totp_clock)
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    _refused(api_a.call("post", CHANGE, body, token=token))
    assert _password_is(tenant_a, member_a, PASSWORD)


def test_users_without_a_factor_are_not_blocked(tenant_a, api_a, member_a):
    token = api_a.login(member_a.email)["access_token"]
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api_a.call("post", CHANGE, body, token=token).status_code == 200


def test_the_policy_requires_a_factor_of_users_who_have_none(tenant_a, api_a, member_a):
    # Within the grace period the user signs in with a password alone, but a sensitive write
    # waits for a factor.
    tenant_update(
        tenant=tenant_a.tenant,
        tenant_settings={**tenant_a.tenant.settings, "mfa": {"mode": "required", "grace_days": 7}},
    )
    tokens = api_a.login(member_a.email)
    assert tokens["mfa_enrolment_required"] is True
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = api_a.call("post", CHANGE, body, token=tokens["access_token"])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "MFA_REQUIRED"
    assert "POST /api/v1/auth/mfa/factors" in response.json()["error"]["message"]
    assert _password_is(tenant_a, member_a, PASSWORD)


# ------------------------------------------------------------------ factor removal


def test_removing_a_factor_wants_a_recent_one(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    url = f"{FACTORS}/{member_enrolled.factor_id}"
    _refused(api_a.call("delete", url, token=stale["access_token"]))
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(pk=member_enrolled.factor_id).exists()
    # a recovery code steps up too
    stepped = api_a.call(
        "post",
        VERIFY,
        {"method": "recovery_code", "code": member_enrolled.recovery_codes[0]},
        token=stale["access_token"],
    )
    assert stepped.status_code == 200, stepped.content
    fresh = stepped.json()["data"]["access_token"]
    assert "rc" in claims(fresh)["amr"]
    assert api_a.call("delete", url, token=fresh).status_code == 204
    with tenant_context(tenant_a.tenant):
        assert not Factor.objects.filter(pk=member_enrolled.factor_id).exists()


def test_adding_a_further_factor_wants_a_recent_one(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    # A stolen session must not add an authenticator of its own to pass the second step
    # with from then on.
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    body = {"type": "totp", "name": "Attacker"}
    _refused(api_a.call("post", FACTORS, body, token=stale["access_token"]))
    with tenant_context(tenant_a.tenant):
        assert list(Factor.objects.filter(user_id=member_a.pk).values_list("name", flat=True)) == [
            "Phone"
        ]
    stepped = _step_up(api_a, stale["access_token"], totp_clock.code(member_enrolled.secret))
    added = api_a.call("post", FACTORS, body, token=stepped["access_token"])
    assert added.status_code == 201, added.content


def test_the_first_factor_needs_no_step_up_even_where_the_policy_requires_one(
    tenant_a, api_a, member_a, totp_clock
):
    tenant_update(
        tenant=tenant_a.tenant,
        tenant_settings={**tenant_a.tenant.settings, "mfa": {"mode": "required", "grace_days": 7}},
    )
    token = api_a.login(member_a.email)["access_token"]
    enrolled = enrol_totp(api_a, token, totp_clock)
    assert len(enrolled.recovery_codes) == 10


def test_regenerating_recovery_codes_wants_a_recent_factor(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    codes_url = "/api/v1/auth/mfa/recovery-codes"
    _refused(api_a.call("post", codes_url, token=stale["access_token"]))
    # the old codes still work: nothing was replaced
    pending = login(api_a, member_a.email)
    code = member_enrolled.recovery_codes[0]
    assert verify(api_a, pending["mfa_token"], "recovery_code", code=code).status_code == 200
    stepped = _step_up(api_a, stale["access_token"], totp_clock.code(member_enrolled.secret))
    regenerated = api_a.call("post", codes_url, token=stepped["access_token"])
    assert regenerated.status_code == 200, regenerated.content
    assert len(regenerated.json()["data"]["recovery_codes"]) == 10


def test_resetting_another_users_factors_wants_a_recent_one(
    tenant_a, api_a, staff_a, staff_enrolled, member_a, totp_clock
):
    with tenant_context(tenant_a.tenant):
        victim_factor = totp_factor(member_a)[0]
    tokens = _signed_in_with_code(api_a, staff_a, staff_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    url = f"/api/v1/users/{member_a.pk}/mfa"
    _refused(api_a.call("delete", url, token=stale["access_token"]))
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(pk=victim_factor.pk).exists()
    stepped = _step_up(api_a, stale["access_token"], totp_clock.code(staff_enrolled.secret))
    assert api_a.call("delete", url, token=stepped["access_token"]).status_code == 204
    with tenant_context(tenant_a.tenant):
        assert not Factor.objects.filter(pk=victim_factor.pk).exists()


# ------------------------------------------------------------------ roles


def _grantee_and_role(tenant_a) -> tuple[User, Role]:
    with tenant_context(tenant_a.tenant):
        grantee = make_user(email="grantee@alpha.test", username="grantee")
        role = Role.objects.create(name="Viewers", permissions=["users.view"])
    return grantee, role


def test_a_role_grant_wants_a_recent_factor(tenant_a, api_a, staff_a, staff_enrolled, totp_clock):
    grantee, role = _grantee_and_role(tenant_a)
    tokens = _signed_in_with_code(api_a, staff_a, staff_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    url = f"/api/v1/users/{grantee.pk}/roles"
    _refused(api_a.call("post", url, {"role_id": role.pk}, token=stale["access_token"]))
    with tenant_context(tenant_a.tenant):
        assert not RoleAssignment.objects.filter(user=grantee).exists()
    stepped = _step_up(api_a, stale["access_token"], totp_clock.code(staff_enrolled.secret))
    granted = api_a.call("post", url, {"role_id": role.pk}, token=stepped["access_token"])
    assert granted.status_code == 201, granted.content


def test_changing_a_roles_permissions_wants_a_recent_factor(
    tenant_a, api_a, staff_a, staff_enrolled, totp_clock
):
    _, role = _grantee_and_role(tenant_a)
    tokens = _signed_in_with_code(api_a, staff_a, staff_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    body = {"permissions": ["users.view", "users.manage"]}
    _refused(api_a.call("patch", f"/api/v1/roles/{role.pk}", body, token=stale["access_token"]))
    with tenant_context(tenant_a.tenant):
        assert Role.objects.get(pk=role.pk).permissions == ["users.view"]


def test_without_the_permission_the_answer_stays_forbidden(
    tenant_a, api_a, member_a, member_enrolled, totp_clock
):
    # The permission is checked first: a step-up would not help, so it is not asked for.
    grantee, role = _grantee_and_role(tenant_a)
    tokens = _signed_in_with_code(api_a, member_a, member_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)
    response = api_a.call(
        "post",
        f"/api/v1/users/{grantee.pk}/roles",
        {"role_id": role.pk},
        token=stale["access_token"],
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


# ------------------------------------------------------------------ identity providers


def test_identity_provider_changes_want_a_recent_factor(
    tenant_a, api_a, staff_a, staff_enrolled, totp_clock
):
    with tenant_context(tenant_a.tenant):
        # tenant.manage is the owners'
        RoleAssignment.objects.create(user=staff_a, role=Role.objects.get(system_key="owner"))
        provider = IdentityProvider.objects.create(
            slug="corp", name="Corp", issuer="https://idp.example.test", client_id="c"
        )
    tokens = _signed_in_with_code(api_a, staff_a, staff_enrolled, totp_clock)
    stale = _aged(tenant_a, api_a, tokens, 11 * 60)["access_token"]
    url = "/api/v1/identity-providers"
    _refused(api_a.call("post", url, {"slug": "other", "name": "Other"}, token=stale))
    _refused(api_a.call("patch", f"{url}/{provider.pk}", {"name": "Renamed"}, token=stale))
    _refused(api_a.call("delete", f"{url}/{provider.pk}", token=stale))
    with tenant_context(tenant_a.tenant):
        assert list(IdentityProvider.objects.values_list("slug", "name")) == [("corp", "Corp")]
    # reading them needs no step-up
    assert api_a.call("get", url, token=stale).status_code == 200


# ------------------------------------------------------------------ the claims and the schema


def test_mfa_recent_reads_amr_and_auth_time():
    now = 1_900_000_000
    assert mfa_recent({"amr": ["pwd", "otp"], "auth_time": now - 600}, 600, now=now)
    assert not mfa_recent({"amr": ["pwd", "otp"], "auth_time": now - 601}, 600, now=now)
    assert not mfa_recent({"amr": ["pwd"], "auth_time": now}, 600, now=now)
    assert not mfa_recent({"amr": ["ext"], "auth_time": now}, 600, now=now)
    assert mfa_recent({"amr": ["ext", "mfa"], "auth_time": now}, 600, now=now)
    assert mfa_recent({"amr": ["pwd", "rc"], "auth_time": now}, 600, now=now)
    assert not mfa_recent({"amr": "otp", "auth_time": now}, 600, now=now)
    assert not mfa_recent({"amr": ["otp"], "auth_time": True}, 600, now=now)
    assert not mfa_recent({"amr": ["otp"]}, 600, now=now)
    assert not mfa_recent({"amr": ["otp"], "auth_time": now + 3600}, 600, now=now)


def test_the_schema_documents_mfa_required(api_a):
    schema = api_a.client.get("/api/schema/?format=json", HTTP_HOST=api_a.host).json()
    operations = {
        op["operationId"]: op
        for path in schema["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for operation_id in (
        "auth_password_change",
        "mfa_factors_create",
        "mfa_factors_delete",
        "mfa_recovery_codes_regenerate",
        "mfa_user_reset",
        "users_roles_assign",
        "roles_update",
        "identity_providers_create",
        "identity_providers_update",
        "identity_providers_delete",
    ):
        assert "MFA_REQUIRED" in str(operations[operation_id]["responses"]["403"]), operation_id
    assert "MFA_REQUIRED" not in str(operations["users_roles_list"]["responses"].get("403", ""))


def test_the_admins_session_cookie_carries_no_recent_factor(
    tenant_a, api_a, member_a, member_enrolled
):
    # A request authenticated by the Django session (the admin's cookie) has no amr or
    # auth_time to show: a user who needs a step-up is refused there too.
    api_a.client.force_login(member_a)
    response = api_a.call("post", CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    _refused(response)
    assert _password_is(tenant_a, member_a, PASSWORD)
