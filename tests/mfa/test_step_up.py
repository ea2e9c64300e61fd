"""A signed-in user verifies a factor again: the same session, a fresh auth_time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session
from tests.mfa.conftest import ME, VERIFY
from tests.mfa.flows import claims, enrol_totp, login, verify

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
