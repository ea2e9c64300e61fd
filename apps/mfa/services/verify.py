"""Checking a second factor: TOTP codes, recovery codes, and a registry of methods.

`second_factor_verify(user=, method=, payload=)` is what sign-in and step-up call. It
looks the method up in `METHODS` and returns the method's `amr` value (RFC 8176: "otp",
"hwk", "rc"); a wrong code raises UnauthorizedError, after the failure was audited and
(at most once per MFA_FAILED_NOTICE_MINUTES per user) announced as `auth.mfa_failed`.

Hook for other factor kinds (apps/mfa/webauthn.py registers "webauthn" this way, imported
by `MfaConfig.ready`):

    from apps.mfa.services.verify import method_register

    def webauthn_assertion_verify(*, user, payload, challenge) -> Factor:
        ...  # raise UnauthorizedError when it does not check out; else the Factor used
    method_register("webauthn", amr="hwk", verify=webauthn_assertion_verify)

A verifier runs inside the transaction `method_verify` opens (so it may `select_for_update`
its factor), gets the request's `payload` (a dict: "code", or "credential" for WebAuthn)
and the sign-in's `MfaChallenge` (locked; None for a step-up, when the user is already
signed in), returns the factor it used (None for a recovery code) and raises
UnauthorizedError on a wrong answer, writing nothing then (`second_factor_failed` records
the failure). `last_used_at` is stamped here.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyotp
import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.audit.services import audit_record
from apps.core.errors import UnauthorizedError, ValidationError
from apps.core.tenancy import current_schema
from apps.jobs.events import event_record
from apps.mfa.crypto import recovery_code_hashes, secret_decrypt
from apps.mfa.models import Factor, MfaChallenge, RecoveryCode

if TYPE_CHECKING:
    from apps.accounts.models import User

logger = structlog.get_logger("apps.mfa.verify")

WRONG_CODE = "The code is not correct, or it has been used already."
# pyotp's defaults, which every authenticator app assumes: SHA-1, 6 digits, 30 s steps.
TOTP_DIGITS = 6
TOTP_INTERVAL = 30
# One step either side of now: a phone's clock may be off, and a code typed just before
# its step ended is still accepted.
TOTP_VALID_WINDOW = 1


class MethodVerifier(Protocol):
    def __call__(
        self, *, user: User, payload: Mapping[str, Any], challenge: MfaChallenge | None
    ) -> Factor | None: ...


@dataclass(frozen=True)
class Method:
    name: str
    amr: str
    verify: MethodVerifier


METHODS: dict[str, Method] = {}


def method_register(name: str, *, amr: str, verify: MethodVerifier) -> None:
    METHODS[name] = Method(name=name, amr=amr, verify=verify)


# ------------------------------------------------------------------ TOTP


def totp_matching_step(*, secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (counter) whose code is `code`, within the valid window around now;
    None when no step's code is. Compared in constant time."""
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    now = time.time() if now is None else now
    current = int(now // TOTP_INTERVAL)  # pyotp's timecode(), without the datetime
    found = None
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def _totp_verify(
    *, user: User, payload: Mapping[str, Any], challenge: MfaChallenge | None
) -> Factor:
    return totp_code_verify(user=user, code=_code_of(payload))


@transaction.atomic
def totp_code_verify(*, user: User, code: str) -> Factor:
    """The confirmed TOTP factor of `user` whose code `code` is, now used: its step is
    recorded, and a code of that step or an earlier one is refused from then on (the rows
    are locked, so two requests with one code cannot both pass)."""
    factors = list(
        Factor.objects.select_for_update()
        .filter(user=user, kind=Factor.Kind.TOTP, confirmed_at__isnull=False)
        .order_by("created_at")
    )
    for factor in factors:
        step = totp_matching_step(secret=secret_decrypt(factor.secret), code=code)
        if step is None:
            continue
        if factor.last_used_step is not None and step <= factor.last_used_step:
            continue  # a replay within the window
        factor.last_used_step = step
        factor.save(update_fields=["last_used_step"])
        return factor
    raise UnauthorizedError(WRONG_CODE)


# ------------------------------------------------------------------ recovery codes


def _recovery_verify(
    *, user: User, payload: Mapping[str, Any], challenge: MfaChallenge | None
) -> None:
    recovery_code_use(user=user, code=_code_of(payload))
    return None


@transaction.atomic
def recovery_code_use(*, user: User, code: str) -> RecoveryCode:
    """Spend one of the user's unused recovery codes (once: the row is locked and stamped)."""
    recovery = (
        RecoveryCode.objects.select_for_update()
        .filter(user=user, code_hash__in=recovery_code_hashes(code), used_at=None)
        .first()
    )
    if (
        recovery is None
        or not Factor.objects.filter(user=user, confirmed_at__isnull=False).exists()
    ):
        raise UnauthorizedError(WRONG_CODE)
    recovery.used_at = timezone.now()
    recovery.save(update_fields=["used_at"])
    remaining = RecoveryCode.objects.filter(user=user, used_at=None).count()
    audit_record(
        action="mfa.recovery_code_used",
        target=user,
        changes={"remaining": remaining},
        actor=user,
    )
    event_record(
        type="auth.mfa_recovery_code_used",
        source="mfa",
        data={"user_id": user.pk, "remaining": remaining},
        metadata={"security": True},
    )
    return recovery


method_register("totp", amr="otp", verify=_totp_verify)
method_register("recovery_code", amr="rc", verify=_recovery_verify)


# ------------------------------------------------------------------ any method


def _code_of(payload: Mapping[str, Any]) -> str:
    code = payload.get("code")
    if not isinstance(code, str) or not code.strip():
        raise ValidationError.for_field("code", "This field is required.")
    return code


def method_verify(
    *,
    user: User,
    method: str,
    payload: Mapping[str, Any],
    challenge: MfaChallenge | None = None,
) -> str:
    """Check `user`'s answer by `method`; its `amr` value when right, the factor stamped as
    used. UnauthorizedError when wrong (nothing written: the caller records the failure,
    see `second_factor_failed`); 422 for an unknown method or a missing field."""
    registered = METHODS.get(method)
    if registered is None:
        raise ValidationError.for_field("method", f"Use one of: {', '.join(sorted(METHODS))}.")
    with transaction.atomic():
        factor = registered.verify(user=user, payload=payload, challenge=challenge)
        if factor is not None:
            factor.last_used_at = timezone.now()
            factor.save(update_fields=["last_used_at"])
    return registered.amr


def second_factor_verify(
    *,
    user: User,
    method: str,
    payload: Mapping[str, Any],
    challenge: MfaChallenge | None = None,
) -> str:
    """`method_verify`, and a wrong answer recorded (audited; the user notified at most once
    per period) before the UnauthorizedError is raised. Call it outside a transaction that
    the error would roll back."""
    try:
        return method_verify(user=user, method=method, payload=payload, challenge=challenge)
    except UnauthorizedError:
        second_factor_failed(user=user, method=method)
        raise


def _failure_notice_due(user: User) -> bool:
    """Whether this failure should send the user a notice: the first in
    MFA_FAILED_NOTICE_MINUTES. A Redis key per user is set only if absent (SET NX) and
    expires after that long, so concurrent failures cannot both win. When Redis cannot say,
    the notice is sent: better twice than never."""
    key = f"{settings.RATE_LIMIT_KEY_PREFIX}:auth:{current_schema()}:mfa_notice:{user.pk}"
    try:
        return bool(
            get_redis_connection("default").set(
                key, 1, nx=True, ex=int(settings.MFA_FAILED_NOTICE_MINUTES) * 60
            )
        )
    except RedisError:
        return True


@transaction.atomic
def second_factor_failed(*, user: User, method: str) -> None:
    """A wrong second factor: audited every time, announced to the user at most once per
    MFA_FAILED_NOTICE_MINUTES (someone who has their password is trying)."""
    audit_record(
        action="mfa.verification_failed", target=user, changes={"method": method}, actor=user
    )
    logger.info("mfa_verification_failed", user_id=user.pk, method=method)
    if _failure_notice_due(user):
        event_record(
            type="auth.mfa_failed",
            source="mfa",
            data={"user_id": user.pk, "method": method},
            metadata={"security": True},
        )
