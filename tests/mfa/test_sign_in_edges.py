"""Sign-in with a second factor: operators on the public host, what ends a challenge, and
what it costs in queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.tenancy import tenant_connection
from tests.accounts.conftest import Api
from tests.conftest import ADMIN_PASSWORD
from tests.mfa.conftest import VERIFY
from tests.mfa.flows import claims, enrol_totp, login, verify

pytestmark = pytest.mark.django_db


def test_a_platform_operator_signs_in_with_a_second_factor(api, operator, totp_clock) -> None:
    public = Api(api, "localhost")
    token = public.login(operator.email, ADMIN_PASSWORD)["access_token"]
    enrolled = enrol_totp(public, token, totp_clock)
    totp_clock.advance(30)

    pending = login(public, operator.email, ADMIN_PASSWORD)
    assert pending["mfa_required"] is True and pending["factors"] == ["totp", "recovery_code"]
    answer = verify(public, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert answer.status_code == 200, answer.content
    assert claims(answer.json()["data"]["access_token"])["amr"] == ["pwd", "otp"]


def test_a_password_change_ends_pending_challenges(api_a, member_a, totp_clock) -> None:
    token = api_a.login(member_a.email)["access_token"]
    enrolled = enrol_totp(api_a, token, totp_clock)
    totp_clock.advance(30)
    # A password change wants a recent second factor (step-up, apps/mfa/step_up.py).
    stepped = api_a.call(
        "post", VERIFY, {"method": "totp", "code": totp_clock.code(enrolled.secret)}, token=token
    )
    token = stepped.json()["data"]["access_token"]
    totp_clock.advance(30)
    pending = login(api_a, member_a.email)
    changed = api_a.call(
        "post",
        "/api/v1/auth/password/change",
        {"old_password": "a-long-enough-password-42", "new_password": "another-passphrase-77"},
        token=token,
    )
    assert changed.status_code == 200, changed.content
    answer = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert answer.status_code == 401


def test_a_challenge_of_one_tenant_is_unknown_on_another(
    api_a, api_b, member_a, totp_clock
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    enrolled = enrol_totp(api_a, token, totp_clock)
    totp_clock.advance(30)
    pending = login(api_a, member_a.email)
    elsewhere = verify(api_b, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert elsewhere.status_code == 401


def test_what_the_two_steps_cost_in_queries(api_a, member_a, totp_clock) -> None:
    token = api_a.login(member_a.email)["access_token"]
    enrolled = enrol_totp(api_a, token, totp_clock)
    totp_clock.advance(30)
    tenant_connection().set_schema_to_public()
    with CaptureQueriesContext(connection) as first:
        pending = login(api_a, member_a.email)
    with CaptureQueriesContext(connection) as second:
        answer = verify(api_a, pending["mfa_token"], code=totp_clock.code(enrolled.secret))
    assert answer.status_code == 200

    def counted(queries: CaptureQueriesContext) -> list[str]:
        return [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SET search_path", "SAVEPOINT", "RELEASE SAVEPOINT"))
        ]

    # The password step: the user (whether they have a factor included), the challenge, the
    # kinds offered. The second: the challenge (read for the rate limit's account, then
    # locked), the factor (locked, its step and its use stamped), the challenge spent, the
    # last sign-in, the roles for the token, the session.
    assert len(counted(first)) == 3, counted(first)
    assert len(counted(second)) == 9, counted(second)
