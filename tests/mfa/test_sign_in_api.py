"""Enrolment and the two-step sign-in over the API, with real TOTP codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.mfa.models import Factor, MfaChallenge
from tests.mfa.conftest import FACTORS, ME, VERIFY
from tests.mfa.flows import claims, enrol_totp, login, stepped_up, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled(api_a, member_a, totp_clock):
    """member_a with a confirmed TOTP factor; the clock moved on a step past its code."""
    tokens = api_a.login(member_a.email)
    factor = enrol_totp(api_a, tokens["access_token"], totp_clock)
    totp_clock.advance(30)
    return factor


def test_enrolment_shows_the_secret_once_and_the_first_code_confirms(
    api_a, member_a, totp_clock
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    created = api_a.call("post", FACTORS, {"type": "totp", "name": "Phone"}, token=token)
    assert created.status_code == 201
    setup = created.json()["data"]
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={setup['secret']}" in setup["otpauth_uri"]
    assert setup["qr_svg"].startswith("<svg")
    [listed] = api_a.call("get", FACTORS, token=token).json()["data"]
    assert listed["confirmed_at"] is None and listed["name"] == "Phone"
    assert "secret" not in listed and setup["secret"] not in str(listed)

    wrong = api_a.call("post", f"{FACTORS}/{setup['id']}/confirm", {"code": "000000"}, token=token)
    assert wrong.status_code == 422 and "code" in wrong.json()["error"]["details"]
    right = api_a.call(
        "post",
        f"{FACTORS}/{setup['id']}/confirm",
        {"code": totp_clock.code(setup["secret"])},
        token=token,
    )
    assert right.status_code == 200
    codes = right.json()["data"]["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    [listed] = api_a.call("get", FACTORS, token=token).json()["data"]
    assert listed["confirmed_at"] is not None

    again = api_a.call("post", f"{FACTORS}/{setup['id']}/confirm", {"code": "123456"}, token=token)
    assert again.status_code == 409
    totp_clock.advance(30)
    token = stepped_up(api_a, token, code=totp_clock.code(setup["secret"]))  # for a second one
    second = enrol_totp(api_a, token, totp_clock, name="Tablet")
    assert second.recovery_codes == []  # only the first factor brings codes


def test_sign_in_asks_for_the_second_factor_and_writes_no_session(
    api_a, member_a, tenant_a, enrolled, totp_clock
) -> None:
    with tenant_context(tenant_a.tenant):
        sessions_before = Session.objects.filter(user=member_a).count()
        last_login = User.objects.get(pk=member_a.pk).last_login

    pending = login(api_a, member_a.email)
    assert pending["mfa_required"] is True
    assert pending["factors"] == ["totp", "recovery_code"]
    assert pending["expires_in"] == 300
    assert "access_token" not in pending
    with tenant_context(tenant_a.tenant):
        assert Session.objects.filter(user=member_a).count() == sessions_before
        assert User.objects.get(pk=member_a.pk).last_login == last_login
        challenge = MfaChallenge.objects.get(user=member_a)
        assert pending["mfa_token"] not in challenge.token_hash

    answer = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert answer.status_code == 200, answer.content
    pair = answer.json()["data"]
    access = claims(pair["access_token"])
    assert access["amr"] == ["pwd", "otp"]
    assert abs(access["auth_time"] - timezone.now().timestamp()) < 60
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert Session.objects.filter(user=member_a).count() == sessions_before + 1
        assert MfaChallenge.objects.get(user=member_a).used_at is not None
        assert Factor.objects.get(pk=enrolled.factor_id).last_used_at is not None

    # A refresh keeps how the user signed in.
    refreshed = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert claims(refreshed.json()["data"]["access_token"])["amr"] == ["pwd", "otp"]


def test_a_wrong_code_is_401_and_a_used_code_cannot_be_replayed(
    api_a, member_a, enrolled, totp_clock
) -> None:
    pending = login(api_a, member_a.email)
    wrong = verify(api_a, pending["mfa_token"], code="000000")
    assert wrong.status_code == 401
    code = totp_clock.code(enrolled.secret)
    assert verify(api_a, pending["mfa_token"], code=code).status_code == 200

    replay = verify(api_a, login(api_a, member_a.email)["mfa_token"], code=code)
    assert replay.status_code == 401
    earlier = totp_clock.code(enrolled.secret, steps=-1)
    assert verify(api_a, login(api_a, member_a.email)["mfa_token"], code=earlier).status_code == 401


def test_the_mfa_token_is_single_use_and_expires(
    api_a, member_a, tenant_a, enrolled, totp_clock
) -> None:
    pending = login(api_a, member_a.email)
    assert verify(
        api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret)
    ).status_code == (200)
    totp_clock.advance(30)
    used = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert used.status_code == 401

    late = login(api_a, member_a.email)
    with tenant_context(tenant_a.tenant):
        MfaChallenge.objects.filter(used_at=None).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    expired = verify(api_a, late["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert expired.status_code == 401
    assert verify(api_a, "not-a-token", code="123456").status_code == 401


def test_the_mfa_token_is_no_access_token(api_a, member_a, enrolled) -> None:
    pending = login(api_a, member_a.email)
    assert api_a.call("get", ME, token=pending["mfa_token"]).status_code == 401
    assert api_a.call("get", FACTORS, token=pending["mfa_token"]).status_code == 401
    as_bearer = api_a.call(
        "post", VERIFY, {"method": "totp", "code": "123456"}, token=pending["mfa_token"]
    )
    assert as_bearer.status_code == 401


def test_a_challenge_dies_after_its_attempts(
    api_a, member_a, enrolled, totp_clock, settings
) -> None:
    settings.MFA_CHALLENGE_MAX_ATTEMPTS = 2
    pending = login(api_a, member_a.email)
    for _ in range(2):
        assert verify(api_a, pending["mfa_token"], code="000000").status_code == 401
    spent = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert spent.status_code == 401
    assert "sign in again" in spent.json()["error"]["message"]


def test_guessing_is_locked_per_account_across_challenges(
    api_a, member_a, enrolled, totp_clock, rate_clock
) -> None:
    # AUTH_RATE_MFA is 5 per 5 minutes: the sixth attempt is refused, whatever the
    # challenge, and a fresh password sign-in does not reset the count.
    for _ in range(3):
        pending = login(api_a, member_a.email)
        for _ in range(2):
            answer = verify(api_a, pending["mfa_token"], code="000000")
            if answer.status_code == 429:
                break
            assert answer.status_code == 401
    assert answer.status_code == 429
    assert int(answer["Retry-After"]) > 0
    right = verify(
        api_a, login(api_a, member_a.email)["mfa_token"], code=totp_clock.code(enrolled.secret)
    )
    assert right.status_code == 429

    rate_clock.advance(301)
    again = verify(
        api_a, login(api_a, member_a.email)["mfa_token"], code=totp_clock.code(enrolled.secret)
    )
    assert again.status_code == 200


def test_right_answers_do_not_count_towards_the_lock(api_a, member_a, enrolled, totp_clock) -> None:
    for _ in range(7):
        pending = login(api_a, member_a.email)
        answer = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
        assert answer.status_code == 200
        totp_clock.advance(30)


def test_recovery_codes_work_once_and_a_new_set_voids_the_old(api_a, member_a, enrolled) -> None:
    first, second = enrolled.recovery_codes[:2]
    answer = verify(api_a, login(api_a, member_a.email)["mfa_token"], "recovery_code", code=first)
    assert answer.status_code == 200
    access_token = answer.json()["data"]["access_token"]
    assert claims(access_token)["amr"] == ["pwd", "rc"]
    pending = login(api_a, member_a.email)
    assert pending["factors"] == ["totp", "recovery_code"]
    assert verify(api_a, pending["mfa_token"], "recovery_code", code=first).status_code == 401

    regenerated = api_a.call("post", "/api/v1/auth/mfa/recovery-codes", token=access_token)
    assert regenerated.status_code == 200
    fresh = regenerated.json()["data"]["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(enrolled.recovery_codes)
    pending = login(api_a, member_a.email)
    assert verify(api_a, pending["mfa_token"], "recovery_code", code=second).status_code == 401
    assert verify(api_a, pending["mfa_token"], "recovery_code", code=fresh[0]).status_code == 200


def test_removing_the_last_factor_ends_the_second_step_and_the_codes(
    api_a, member_a, tenant_a, enrolled, totp_clock
) -> None:
    pending = login(api_a, member_a.email)
    token = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret)).json()[
        "data"
    ]["access_token"]
    assert api_a.call("delete", f"{FACTORS}/{enrolled.factor_id}", token=token).status_code == 204
    assert api_a.call("delete", f"{FACTORS}/{enrolled.factor_id}", token=token).status_code == 404
    after = login(api_a, member_a.email)
    assert "access_token" in after and "mfa_required" not in after
    with tenant_context(tenant_a.tenant):
        assert not member_a.mfa_recovery_codes.exists()


def test_a_user_cannot_touch_another_users_factor(api_a, member_a, tenant_a, enrolled) -> None:
    from tests.accounts.factories import make_user

    with tenant_context(tenant_a.tenant):
        make_user(email="other@alpha.test", username="other")
    other = api_a.login("other@alpha.test")["access_token"]
    assert api_a.call("get", FACTORS, token=other).json()["data"] == []
    path = f"{FACTORS}/{enrolled.factor_id}"
    assert api_a.call("delete", path, token=other).status_code == 404
    assert api_a.call("post", f"{path}/confirm", {"code": "123456"}, token=other).status_code == 404
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(pk=enrolled.factor_id).exists()


def test_an_unregistered_factor_type_is_unsupported(api_a, member_a) -> None:
    # "webauthn" is registered by apps/mfa/webauthn_flows.py (tests/mfa/test_webauthn_api.py).
    token = api_a.login(member_a.email)["access_token"]
    response = api_a.call("post", FACTORS, {"type": "sms", "name": "Key"}, token=token)
    assert response.status_code == 422
    assert "Unsupported factor type" in str(response.json()["error"]["details"])
