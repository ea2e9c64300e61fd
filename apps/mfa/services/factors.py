"""Enrolling, confirming and removing second factors; recovery codes.

Kinds are enrolled through a registry, so apps/mfa/webauthn.py can add "webauthn" without
touching this module:

    from apps.mfa.services.factors import enrolment_register

    def webauthn_registration_begin(*, user, factor) -> dict: ...
        # fill the unsaved `factor` (e.g. pending_challenge); answer what the client needs
    def webauthn_registration_finish(*, factor, payload) -> None: ...
        # check payload["credential"]; fill credential_id, public_key, ...; raise
        # ValidationError when it does not check out (nothing is saved then)
    enrolment_register("webauthn", begin=webauthn_registration_begin,
                       confirm=webauthn_registration_finish)

`begin` runs inside the transaction that saves the new, unconfirmed factor; `confirm`
inside the one that locks it, stamps `confirmed_at` and saves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import pyotp
import segno
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import ConflictError, NotFoundError, ValidationError
from apps.jobs.events import event_record
from apps.mfa import crypto
from apps.mfa.models import Factor, MfaChallenge, RecoveryCode
from apps.mfa.services.verify import TOTP_DIGITS, TOTP_INTERVAL, totp_matching_step
from apps.rbac.grants import require_outranks

if TYPE_CHECKING:
    from apps.accounts.models import User

RECOVERY_CODES_PER_SET = 10
# Factors a user may hold, confirmed or pending: enough for every device anyone carries.
MAX_FACTORS = 10
UNSUPPORTED = "Unsupported factor type."


class EnrolmentBegin(Protocol):
    def __call__(self, *, user: User, factor: Factor) -> dict[str, Any]: ...


class EnrolmentConfirm(Protocol):
    def __call__(self, *, factor: Factor, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Enrolment:
    begin: EnrolmentBegin
    confirm: EnrolmentConfirm


ENROLMENTS: dict[str, Enrolment] = {}


def enrolment_register(kind: str, *, begin: EnrolmentBegin, confirm: EnrolmentConfirm) -> None:
    ENROLMENTS[kind] = Enrolment(begin=begin, confirm=confirm)


# ------------------------------------------------------------------ TOTP


def _totp_issuer() -> str:
    if settings.MFA_TOTP_ISSUER:
        return str(settings.MFA_TOTP_ISSUER)
    tenant = getattr(connection, "tenant", None)
    return str(getattr(tenant, "name", "") or "Platform")


def _totp_begin(*, user: User, factor: Factor) -> dict[str, Any]:
    secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    factor.secret = crypto.secret_encrypt(secret)
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
        name=user.email, issuer_name=_totp_issuer()
    )
    qr_svg = segno.make_qr(uri, error="m").svg_inline(scale=4)
    return {"otpauth_uri": uri, "qr_svg": qr_svg, "secret": secret}


def _totp_confirm(*, factor: Factor, payload: Mapping[str, Any]) -> None:
    code = payload.get("code")
    step = None
    if isinstance(code, str):
        step = totp_matching_step(secret=crypto.secret_decrypt(factor.secret), code=code)
    if step is None:
        raise ValidationError.for_field("code", "The code is not correct; try the next one.")
    factor.last_used_step = step  # this code cannot then sign in


enrolment_register("totp", begin=_totp_begin, confirm=_totp_confirm)


# ------------------------------------------------------------------ factors


@transaction.atomic
def factor_enrol(*, user: User, kind: str, name: str) -> tuple[Factor, dict[str, Any]]:
    """A new, unconfirmed factor of `user`, and what their device needs to set it up (for
    TOTP: the secret, as an otpauth:// URI and as a QR code). Shown this once."""
    enrolment = ENROLMENTS.get(kind)
    if enrolment is None:
        raise ValidationError.for_field("type", UNSUPPORTED)
    if Factor.objects.filter(user=user).count() >= MAX_FACTORS:
        raise ConflictError(f"A user can hold at most {MAX_FACTORS} factors; remove one first.")
    factor = Factor(user=user, kind=kind, name=name)
    setup = enrolment.begin(user=user, factor=factor)
    factor.save()
    audit_record(
        action="mfa.factor_enrolled",
        target=factor,
        changes={"user_id": user.pk, "kind": kind, "name": name},
        actor=user,
    )
    return factor, setup


@dataclass(frozen=True)
class Confirmed:
    factor: Factor
    recovery_codes: list[str] | None  # a fresh set, when this was the user's first factor


@transaction.atomic
def factor_confirm(*, user: User, factor_id: str, payload: Mapping[str, Any]) -> Confirmed:
    """Confirm `user`'s pending factor with its first code (or registration); from then on it
    counts. The first confirmed factor of a user also brings their recovery codes."""
    factor = Factor.objects.select_for_update().filter(pk=factor_id, user=user).first()
    if factor is None:
        raise NotFoundError("Factor not found")
    if factor.is_confirmed:
        raise ConflictError("This factor is already confirmed.")
    enrolment = ENROLMENTS.get(factor.kind)
    if enrolment is None:
        raise ValidationError.for_field("type", UNSUPPORTED)
    first = not Factor.objects.filter(user=user, confirmed_at__isnull=False).exists()
    enrolment.confirm(factor=factor, payload=payload)
    now = timezone.now()
    factor.confirmed_at = now
    factor.last_used_at = now
    factor.pending_challenge = ""
    factor.save()
    audit_record(
        action="mfa.factor_confirmed",
        target=factor,
        changes={"user_id": user.pk, "kind": factor.kind, "name": factor.name},
        actor=user,
    )
    event_record(
        type="auth.mfa_factor_added",
        source="mfa",
        data={"user_id": user.pk, "factor_id": str(factor.pk), "kind": factor.kind},
        metadata={"security": True},
    )
    codes = _recovery_codes_replace(user=user) if first else None
    return Confirmed(factor=factor, recovery_codes=codes)


@transaction.atomic
def factor_delete(*, user: User, factor_id: str) -> None:
    """Remove one of `user`'s factors. With the last confirmed one go the recovery codes:
    they are a way around a second factor the user no longer has."""
    factor = Factor.objects.select_for_update().filter(pk=factor_id, user=user).first()
    if factor is None:
        raise NotFoundError("Factor not found")
    was_confirmed = factor.is_confirmed
    changes = {"user_id": user.pk, "kind": factor.kind, "name": factor.name}
    factor.delete()
    audit_record(
        action="mfa.factor_removed",
        target_type="factor",
        target_id=factor_id,
        changes=changes,
        actor=user,
    )
    if not was_confirmed:
        return
    if not Factor.objects.filter(user=user, confirmed_at__isnull=False).exists():
        RecoveryCode.objects.filter(user=user).delete()
    event_record(
        type="auth.mfa_factor_removed",
        source="mfa",
        data={"user_id": user.pk, "factor_id": str(factor_id), "kind": changes["kind"]},
        metadata={"security": True},
    )


@transaction.atomic
def user_mfa_reset(*, user: User, by: User) -> int:
    """Remove every factor, recovery code and pending sign-in of `user`, who lost them (an
    administrator's act; the caller checked users.manage for this user). They sign in with
    the password alone again, or enrol anew where the tenant's policy requires it. Not one's
    own (422: the own endpoints are for that), nor a user who outranks `by` (403). Returns
    the factors removed."""
    if user.pk == by.pk:
        raise ValidationError("Remove your own factors at /api/v1/auth/mfa/factors.")
    require_outranks(by, user)
    confirmed = Factor.objects.filter(user=user, confirmed_at__isnull=False).count()
    removed, _ = Factor.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    MfaChallenge.objects.filter(user=user).delete()
    audit_record(action="mfa.reset", target=user, changes={"factors_removed": removed})
    if confirmed:
        event_record(
            type="auth.mfa_factor_removed",
            source="mfa",
            data={"user_id": user.pk, "kind": "all", "by_admin": True},
            metadata={"security": True},
        )
    return removed


# ------------------------------------------------------------------ recovery codes


def _recovery_codes_replace(*, user: User) -> list[str]:
    codes = [crypto.recovery_code_generate() for _ in range(RECOVERY_CODES_PER_SET)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=crypto.recovery_code_hash(code)) for code in codes
    )
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """A new set of recovery codes for `user`, replacing (voiding) the old one. Returned this
    once; stored as keyed hashes."""
    if not Factor.objects.filter(user=user, confirmed_at__isnull=False).exists():
        raise ConflictError("Add a second factor before creating recovery codes.")
    codes = _recovery_codes_replace(user=user)
    audit_record(
        action="mfa.recovery_codes_regenerated",
        target=user,
        changes={"count": len(codes)},
        actor=user,
    )
    event_record(
        type="auth.mfa_recovery_codes_regenerated",
        source="mfa",
        data={"user_id": user.pk},
        metadata={"security": True},
    )
    return codes


def mfa_records_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete factors never confirmed within MFA_UNCONFIRMED_FACTOR_HOURS and sign-in
    challenges that expired (run daily per schema by the jobs' cleanup)."""
    now = now or timezone.now()
    horizon = now - timedelta(hours=settings.MFA_UNCONFIRMED_FACTOR_HOURS)
    factors, _ = Factor.objects.filter(confirmed_at__isnull=True, created_at__lt=horizon).delete()
    challenges, _ = MfaChallenge.objects.filter(expires_at__lt=now).delete()
    return {"mfa_factors": factors, "mfa_challenges": challenges}
