"""The Django admin asks staff with a second factor for it after the password, on tenant
hosts and the public host, before any session login; operators can be required to have one."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.mfa.crypto import recovery_code_generate, recovery_code_hash
from apps.mfa.models import Factor, RecoveryCode
from apps.tenants.services import tenant_update
from devtools.services import free_port
from tests.accounts.factories import PASSWORD, make_user
from tests.conftest import ADMIN_PASSWORD
from tests.mfa.factories import code_at, totp_factor

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
SECOND = "/admin/login/second-factor/"
PUBLIC_HOST = "localhost"


def _client() -> Client:
    return Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.7.1")


def _password(
    client: Client, host: str, email: str, password: str = PASSWORD, next_: str = "/admin/"
):
    return client.post(
        LOGIN, {"username": email, "password": password, "next": next_}, HTTP_HOST=host
    )


def _code(client: Client, host: str, code: str):
    return client.post(SECOND, {"code": code}, HTTP_HOST=host)


def _signed_in(client: Client, host: str) -> bool:
    return client.get("/admin/", HTTP_HOST=host).status_code == 200


@pytest.fixture
def staff(tenant_a) -> User:
    with tenant_context(tenant_a.tenant):
        return make_user(email="staff-mfa@alpha.test", username="staffmfa", is_staff=True)


@pytest.fixture
def staff_secret(tenant_a, staff) -> str:
    with tenant_context(tenant_a.tenant):
        return totp_factor(staff)[1]


def _audit(tenant, action: str) -> list[AuditEvent]:
    with tenant_context(tenant.tenant):
        return list(AuditEvent.objects.filter(action=action))


def test_the_password_leads_to_the_code_and_the_code_signs_in(tenant_a, staff, staff_secret):
    client = _client()
    # given the right password: no session yet, the code page instead
    after_password = _password(client, tenant_a.host, staff.email, next_="/admin/accounts/")
    assert after_password.status_code == 302 and after_password["Location"] == SECOND
    assert "_auth_user_id" not in client.session
    assert not _signed_in(client, tenant_a.host)
    page = client.get(SECOND, HTTP_HOST=tenant_a.host)
    assert page.status_code == 200 and b'name="code"' in page.content
    # when the code of the authenticator app is sent
    done = _code(client, tenant_a.host, code_at(staff_secret))
    # then the session is signed in and goes where the sign-in was headed
    assert done.status_code == 302 and done["Location"] == "/admin/accounts/"
    assert client.session["_auth_user_id"] == str(staff.pk)
    assert _signed_in(client, tenant_a.host)
    assert [e.changes["amr"] for e in _audit(tenant_a, "mfa.admin_sign_in")] == [["pwd", "otp"]]


def test_a_wrong_code_is_refused_and_audited(tenant_a, staff, staff_secret):
    client = _client()
    _password(client, tenant_a.host, staff.email)
    wrong = _code(
        client, tenant_a.host, "000000" if code_at(staff_secret) != "000000" else "111111"
    )
    assert wrong.status_code == 401
    assert b"not correct" in wrong.content
    assert not _signed_in(client, tenant_a.host)
    assert len(_audit(tenant_a, "mfa.verification_failed")) == 1
    # a recovery code typed wrong too
    assert _code(client, tenant_a.host, "abcde-fghjk").status_code == 401
    assert len(_audit(tenant_a, "mfa.verification_failed")) == 2


def test_a_code_cannot_be_replayed_for_another_sign_in(tenant_a, staff, staff_secret):
    code = code_at(staff_secret)
    first = _client()
    _password(first, tenant_a.host, staff.email)
    assert _code(first, tenant_a.host, code).status_code == 302
    second = _client()
    _password(second, tenant_a.host, staff.email)
    assert _code(second, tenant_a.host, code).status_code == 401
    assert not _signed_in(second, tenant_a.host)


def test_a_recovery_code_signs_in_once(tenant_a, staff, staff_secret):
    recovery = recovery_code_generate()
    with tenant_context(tenant_a.tenant):
        RecoveryCode.objects.create(user=staff, code_hash=recovery_code_hash(recovery))
    client = _client()
    _password(client, tenant_a.host, staff.email)
    assert _code(client, tenant_a.host, recovery.upper()).status_code == 302
    assert _signed_in(client, tenant_a.host)
    again = _client()
    _password(again, tenant_a.host, staff.email)
    assert _code(again, tenant_a.host, recovery).status_code == 401
    assert len(_audit(tenant_a, "mfa.recovery_code_used")) == 1


def test_the_code_page_without_a_password_step_goes_back_to_the_login(
    tenant_a, staff, staff_secret
):
    client = _client()
    response = _code(client, tenant_a.host, code_at(staff_secret))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not _signed_in(client, tenant_a.host)


def test_too_many_wrong_codes_end_the_pending_sign_in(tenant_a, staff, staff_secret, settings):
    settings.MFA_CHALLENGE_MAX_ATTEMPTS = 2
    client = _client()
    _password(client, tenant_a.host, staff.email)
    assert _code(client, tenant_a.host, "abcde-aaaaa").status_code == 401
    ended = _code(client, tenant_a.host, "abcde-bbbbb")
    assert ended.status_code == 302 and ended["Location"] == LOGIN
    # the right code no longer helps: the password is asked again
    late = _code(client, tenant_a.host, code_at(staff_secret))
    assert late.status_code == 302 and late["Location"] == LOGIN
    assert not _signed_in(client, tenant_a.host)


def test_a_pending_sign_in_expires(tenant_a, staff, staff_secret, settings):
    settings.MFA_CHALLENGE_SECONDS = 0
    client = _client()
    _password(client, tenant_a.host, staff.email)
    late = _code(client, tenant_a.host, code_at(staff_secret))
    assert late.status_code == 302 and late["Location"] == LOGIN
    assert not _signed_in(client, tenant_a.host)


def test_code_attempts_share_the_accounts_limit_across_sign_ins(
    tenant_a, staff, staff_secret, settings
):
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "mfa": "3/m"}
    for n in range(3):  # three sign-ins, one wrong code each
        client = _client()
        _password(client, tenant_a.host, staff.email)
        assert _code(client, tenant_a.host, f"abcde-{n}aaaa").status_code == 401
    client = _client()
    _password(client, tenant_a.host, staff.email)
    limited = _code(client, tenant_a.host, code_at(staff_secret))
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert not _signed_in(client, tenant_a.host)


def test_staff_without_a_factor_sign_in_with_the_password_alone(tenant_a, staff):
    client = _client()
    response = _password(client, tenant_a.host, staff.email)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert _signed_in(client, tenant_a.host)


def test_an_unconfirmed_factor_asks_for_nothing(tenant_a, staff):
    with tenant_context(tenant_a.tenant):
        totp_factor(staff, confirmed=False)
    client = _client()
    assert _password(client, tenant_a.host, staff.email)["Location"] == "/admin/"


def test_a_wrong_password_never_reaches_the_code_step(tenant_a, staff, staff_secret):
    client = _client()
    response = _password(client, tenant_a.host, staff.email, password="wrong-password-1")
    assert response.status_code == 200
    assert client.get(SECOND, HTTP_HOST=tenant_a.host)["Location"] == LOGIN


# ------------------------------------------------------------------ the public admin


@pytest.fixture
def operator_secret(operator: User) -> str:
    with schema_context("public"):
        return totp_factor(operator)[1]


def test_an_operator_with_a_factor_is_asked_for_it(operator, operator_secret):
    client = _client()
    response = _password(client, PUBLIC_HOST, operator.email, ADMIN_PASSWORD)
    assert response["Location"] == SECOND
    assert not _signed_in(client, PUBLIC_HOST)
    assert _code(client, PUBLIC_HOST, "abcde-aaaaa").status_code == 401
    assert _code(client, PUBLIC_HOST, code_at(operator_secret)).status_code == 302
    assert _signed_in(client, PUBLIC_HOST)


def test_operators_without_a_factor_are_refused_when_required(operator, settings):
    settings.MFA_REQUIRED_FOR_OPERATORS = True
    client = _client()
    refused = _password(client, PUBLIC_HOST, operator.email, ADMIN_PASSWORD)
    assert refused.status_code == 200
    errors = list(refused.context["form"].non_field_errors())
    assert any("POST /api/v1/auth/mfa/factors" in error for error in errors)
    assert not _signed_in(client, PUBLIC_HOST)
    # once they enrolled one, the same password leads to the code
    with schema_context("public"):
        secret = totp_factor(operator)[1]
    assert _password(client, PUBLIC_HOST, operator.email, ADMIN_PASSWORD)["Location"] == SECOND
    assert _code(client, PUBLIC_HOST, code_at(secret)).status_code == 302
    assert _signed_in(client, PUBLIC_HOST)


def test_operators_without_a_factor_get_in_when_not_required(operator, settings):
    settings.MFA_REQUIRED_FOR_OPERATORS = False
    client = _client()
    assert _password(client, PUBLIC_HOST, operator.email, ADMIN_PASSWORD)["Location"] == "/admin/"


def test_tenant_staff_are_not_operators(tenant_a, staff, settings):
    # The operators' requirement is the public admin's; a tenant's staff follow its policy.
    settings.MFA_REQUIRED_FOR_OPERATORS = True
    client = _client()
    assert _password(client, tenant_a.host, staff.email)["Location"] == "/admin/"


def test_the_code_step_with_redis_down_is_refused_with_a_clear_message(
    tenant_a, staff, staff_secret, settings
):
    client = _client()
    assert _password(client, tenant_a.host, staff.email)["Location"] == SECOND
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        name: {**config, "LOCATION": dead} for name, config in settings.CACHES.items()
    }
    response = _code(client, tenant_a.host, code_at(staff_secret))
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert b"unavailable" in response.content
    assert "_auth_user_id" not in client.session


def _require_mfa(tenant_a, grace_days: int) -> None:
    tenant_update(
        tenant=tenant_a.tenant,
        tenant_settings={
            **tenant_a.tenant.settings,
            "mfa": {"mode": "required", "grace_days": grace_days},
        },
    )


def test_staff_whose_enrolment_is_overdue_are_refused(tenant_a, staff):
    _require_mfa(tenant_a, grace_days=0)
    client = _client()
    refused = _password(client, tenant_a.host, staff.email)
    assert refused.status_code == 200
    errors = list(refused.context["form"].non_field_errors())
    assert any("POST /api/v1/auth/mfa/enrol" in error for error in errors)
    assert not _signed_in(client, tenant_a.host)


def test_staff_within_the_grace_period_get_in(tenant_a, staff):
    _require_mfa(tenant_a, grace_days=7)
    client = _client()
    assert _password(client, tenant_a.host, staff.email)["Location"] == "/admin/"


def test_a_security_key_alone_is_told_the_admin_takes_codes(tenant_a, staff):
    with tenant_context(tenant_a.tenant):
        Factor.objects.create(
            user=staff,
            kind=Factor.Kind.WEBAUTHN,
            name="Key",
            credential_id=b"credential-1",
            public_key=b"key",
            confirmed_at=timezone.now(),
        )
    client = _client()
    assert _password(client, tenant_a.host, staff.email)["Location"] == SECOND
    page = client.get(SECOND, HTTP_HOST=tenant_a.host)
    assert b"authenticator app" in page.content and b"neither" in page.content
    assert not _signed_in(client, tenant_a.host)
