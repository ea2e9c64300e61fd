"""Completing a sign-in with a second factor, enrolling one when the policy demands it
first, and a step-up of a signed-in session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.services.sessions import ClientInfo, session_second_factor, session_start
from apps.accounts.tokens import TokenPair
from apps.core.errors import ConflictError, UnauthorizedError
from apps.mfa.models import Factor, MfaChallenge
from apps.mfa.selectors import user_has_mfa
from apps.mfa.services.challenges import CHALLENGE_INVALID, challenge_lock
from apps.mfa.services.factors import Confirmed, factor_confirm, factor_enrol
from apps.mfa.services.verify import (
    WRONG_CODE,
    method_verify,
    second_factor_failed,
    second_factor_verify,
)

if TYPE_CHECKING:
    from apps.accounts.models import User

ENROL_FIRST = "Enrol a second factor first (POST /api/v1/auth/mfa/enrol)."
NO_FACTOR = "You have no second factor to verify; add one first."


def mfa_sign_in_complete(
    *, mfa_token: str, method: str, payload: Mapping[str, Any], client: ClientInfo
) -> TokenPair:
    """Answer the sign-in challenge `mfa_token` names with a second factor: right, and the
    challenge is spent and the session started in one transaction (its `amr` the password's
    and the method's); wrong, and the challenge counts an attempt (it dies after
    MFA_CHALLENGE_MAX_ATTEMPTS), the failure is audited, and 401."""
    failed = False
    with transaction.atomic():
        challenge = challenge_lock(mfa_token=mfa_token)
        user = challenge.user
        if challenge.enrolment_required and not user_has_mfa(user):
            raise ConflictError(ENROL_FIRST)
        try:
            amr = method_verify(user=user, method=method, payload=payload, challenge=challenge)
        except UnauthorizedError:
            MfaChallenge.objects.filter(pk=challenge.pk).update(attempts=F("attempts") + 1)
            second_factor_failed(user=user, method=method)
            failed = True
        else:
            now = timezone.now()
            challenge.used_at = now
            challenge.save(update_fields=["used_at"])
            user.last_login = now
            user.save(update_fields=["last_login"])
            pair = session_start(user=user, client=client, amr=[challenge.amr_first, amr])
    if failed:
        # Raised after the block, so the attempt and the audit row are committed.
        raise UnauthorizedError(WRONG_CODE)
    return pair


def _enrolment_challenge(mfa_token: str) -> MfaChallenge:
    """The live challenge of a sign-in that must enrol a factor first; 401 for any other
    (a challenge of a user who has a factor is answered with it, never by enrolling one)."""
    challenge = challenge_lock(mfa_token=mfa_token)
    if not challenge.enrolment_required or user_has_mfa(challenge.user):
        raise UnauthorizedError(CHALLENGE_INVALID)
    return challenge


@transaction.atomic
def mfa_enrol_with_token(*, mfa_token: str, kind: str, name: str) -> tuple[Factor, dict[str, Any]]:
    """`factor_enrol` for the user of a sign-in that must enrol first (the policy's grace
    period is over): the token proves the password, and lets them do this one thing."""
    challenge = _enrolment_challenge(mfa_token)
    return factor_enrol(user=challenge.user, kind=kind, name=name)


@transaction.atomic
def mfa_enrol_confirm_with_token(
    *, mfa_token: str, factor_id: str, payload: Mapping[str, Any]
) -> Confirmed:
    """`factor_confirm` for that user. Then the same token completes the sign-in at
    POST /auth/mfa/verify (with the next code, or one of the recovery codes returned)."""
    challenge = _enrolment_challenge(mfa_token)
    return factor_confirm(user=challenge.user, factor_id=factor_id, payload=payload)


def mfa_step_up(
    *, user: User, session_id: str, method: str, payload: Mapping[str, Any]
) -> TokenPair:
    """Verify a second factor of the signed-in `user`: a new token pair for the same
    session, `auth_time` now and the method in `amr`. A wrong answer is recorded and 401."""
    if not user_has_mfa(user):
        raise ConflictError(NO_FACTOR)
    amr = second_factor_verify(user=user, method=method, payload=payload)
    return session_second_factor(user=user, session_id=session_id, amr=amr)
