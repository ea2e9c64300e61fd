"""The core checks of a second factor: TOTP codes (window, replay), recovery codes, the
method registry, and the selectors sign-in reads."""

from __future__ import annotations

import pyotp
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.errors import UnauthorizedError, ValidationError
from apps.jobs.models import OutboxEvent
from apps.mfa import crypto
from apps.mfa.models import Factor, RecoveryCode
from apps.mfa.selectors import factor_kinds, user_has_mfa
from apps.mfa.services.verify import (
    METHODS,
    recovery_code_use,
    second_factor_verify,
    totp_code_verify,
    totp_matching_step,
)
from tests.accounts.factories import make_user
from tests.mfa.factories import code_at, totp_factor


@pytest.fixture
def user(tenant_a):
    with tenant_context(tenant_a.tenant):
        yield make_user(email="mfa@alpha.test", username="mfa")


def test_the_secret_is_stored_encrypted(user) -> None:
    factor, secret = totp_factor(user)
    factor.refresh_from_db()
    assert secret not in factor.secret
    assert crypto.secret_decrypt(factor.secret) == secret


def test_a_current_code_is_accepted_once(user) -> None:
    factor, secret = totp_factor(user)
    code = code_at(secret)
    assert totp_code_verify(user=user, code=code).pk == factor.pk
    with pytest.raises(UnauthorizedError):
        totp_code_verify(user=user, code=code)  # replayed within its window


def test_the_previous_step_is_refused_once_a_later_one_was_used(user) -> None:
    _, secret = totp_factor(user)
    totp_code_verify(user=user, code=code_at(secret))
    with pytest.raises(UnauthorizedError):
        totp_code_verify(user=user, code=code_at(secret, offset_steps=-1))


def test_codes_one_step_either_side_are_accepted_but_not_two(user) -> None:
    _, secret = totp_factor(user)
    now = 1_800_000_015.0
    totp = pyotp.TOTP(secret)
    step = int(now // 30)
    assert totp_matching_step(secret=secret, code=totp.at(now - 30), now=now) == step - 1
    assert totp_matching_step(secret=secret, code=totp.at(now + 30), now=now) == step + 1
    assert totp_matching_step(secret=secret, code=totp.at(now - 60), now=now) is None
    assert totp_matching_step(secret=secret, code="12345", now=now) is None
    assert (
        totp_matching_step(secret=secret, code="\uff11\uff12\uff13\uff14\uff15\uff16", now=now)
        is None
    )


def test_a_wrong_code_and_an_unconfirmed_factor_are_refused(user) -> None:
    _, secret = totp_factor(user, confirmed=False)
    with pytest.raises(UnauthorizedError):
        totp_code_verify(user=user, code=code_at(secret))


def test_a_recovery_code_works_once(user) -> None:
    totp_factor(user)
    code = crypto.recovery_code_generate()
    RecoveryCode.objects.create(user=user, code_hash=crypto.recovery_code_hash(code))
    used = recovery_code_use(user=user, code=code.upper().replace("-", " "))
    assert used.used_at is not None
    with pytest.raises(UnauthorizedError):
        recovery_code_use(user=user, code=code)
    assert AuditEvent.objects.filter(action="mfa.recovery_code_used").count() == 1
    assert OutboxEvent.objects.filter(event_type="auth.mfa_recovery_code_used").count() == 1


def test_recovery_codes_are_stored_as_keyed_hashes(user, settings) -> None:
    code = crypto.recovery_code_generate()
    stored = crypto.recovery_code_hash(code)
    assert code.replace("-", "") not in stored
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-for-the-rotation-test-0123456789"
    assert crypto.recovery_code_hash(code) != stored
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert stored in crypto.recovery_code_hashes(code)


def test_second_factor_verify_answers_the_amr_and_stamps_the_factor(user) -> None:
    factor, secret = totp_factor(user)
    assert second_factor_verify(user=user, method="totp", payload={"code": code_at(secret)}) == (
        "otp"
    )
    factor.refresh_from_db()
    assert factor.last_used_at is not None
    assert factor.last_used_step is not None


def test_a_wrong_answer_is_audited_and_announced_once_per_period(user) -> None:
    totp_factor(user)
    for _ in range(3):
        with pytest.raises(UnauthorizedError):
            second_factor_verify(user=user, method="totp", payload={"code": "000000"})
    assert AuditEvent.objects.filter(action="mfa.verification_failed").count() == 3
    assert OutboxEvent.objects.filter(event_type="auth.mfa_failed").count() == 1


def test_unknown_methods_and_missing_codes_are_validation_errors(user) -> None:
    totp_factor(user)
    with pytest.raises(ValidationError):
        second_factor_verify(user=user, method="sms", payload={"code": "123456"})
    with pytest.raises(ValidationError):
        second_factor_verify(user=user, method="totp", payload={})
    assert {"totp", "recovery_code"} <= set(METHODS)


def test_selectors_count_only_confirmed_factors(user) -> None:
    assert not user_has_mfa(user)
    assert factor_kinds(user) == []
    totp_factor(user, confirmed=False)
    assert not user_has_mfa(user)
    totp_factor(user, name="Tablet")
    RecoveryCode.objects.create(user=user, code_hash="x" * 64)
    with CaptureQueriesContext(connection) as queries:
        assert factor_kinds(user) == ["totp", "recovery_code"]
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert user_has_mfa(user)
    assert len(queries) == 1
    assert Factor.objects.filter(user=user).count() == 2
