"""Pending sign-ins: the challenge a correct password starts when a second factor is due.

The client gets a random `mfa_token` (256 bits; only its SHA-256 is stored) and answers
with it at POST /api/v1/auth/mfa/verify within MFA_CHALLENGE_SECONDS. It is no access
token: no other endpoint accepts it, and as a Bearer it is refused (401). A challenge is
spent by its first right answer, and dies after MFA_CHALLENGE_MAX_ATTEMPTS wrong ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from apps.core.errors import UnauthorizedError
from apps.mfa.crypto import challenge_token_generate, challenge_token_hash
from apps.mfa.models import MfaChallenge
from apps.mfa.selectors import factor_kinds

if TYPE_CHECKING:
    from apps.accounts.models import User

CHALLENGE_INVALID = "The sign-in has expired or is no longer valid; sign in again."


@dataclass(frozen=True)
class MfaPending:
    """The answer to a correct password when a second factor (or an enrolment) is due."""

    mfa_token: str
    factors: list[str]
    expires_in: int
    enrolment_required: bool = False

    def as_response(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "mfa_required": True,
            "mfa_token": self.mfa_token,
            "factors": self.factors,
            "expires_in": self.expires_in,
        }
        if self.enrolment_required:
            answer["enrolment_required"] = True
        return answer


def challenge_start(
    *,
    user: User,
    ip_address: str | None,
    user_agent: str,
    enrolment_required: bool = False,
    amr_first: str = "pwd",
    now: datetime | None = None,
) -> MfaPending:
    """Store a pending sign-in of `user` (the caller's transaction) and answer its token."""
    now = now or timezone.now()
    token, token_hash = challenge_token_generate()
    lifetime = int(settings.MFA_CHALLENGE_SECONDS)
    MfaChallenge.objects.create(
        user=user,
        token_hash=token_hash,
        expires_at=now + timedelta(seconds=lifetime),
        enrolment_required=enrolment_required,
        amr_first=amr_first,
        ip_address=ip_address,
        user_agent=user_agent[:512],
    )
    return MfaPending(
        mfa_token=token,
        factors=[] if enrolment_required else factor_kinds(user),
        expires_in=lifetime,
        enrolment_required=enrolment_required,
    )


def _live(challenge: MfaChallenge | None, now: datetime) -> MfaChallenge:
    if (
        challenge is None
        or challenge.used_at is not None
        or challenge.expires_at <= now
        or challenge.attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS
        or not challenge.user.is_active
        or challenge.user.is_deleted
        # Started before a logout-all or a password change: that ended it too.
        or (
            challenge.user.tokens_valid_after is not None
            and challenge.created_at < challenge.user.tokens_valid_after
        )
    ):
        raise UnauthorizedError(CHALLENGE_INVALID)
    return challenge


def challenge_get(*, mfa_token: str, now: datetime | None = None) -> MfaChallenge:
    """The live challenge `mfa_token` names, with its user; 401 when there is none (unknown,
    used, expired, out of attempts, its user since deactivated, or all their sign-ins ended
    since: a password change or a logout-all)."""
    challenge = (
        MfaChallenge.objects.select_related("user")
        .filter(token_hash=challenge_token_hash(mfa_token))
        .first()
    )
    return _live(challenge, now or timezone.now())


def challenge_lock(*, mfa_token: str, now: datetime | None = None) -> MfaChallenge:
    """`challenge_get`, the row locked (in the caller's transaction) so that two answers to
    one challenge are taken one after the other."""
    challenge = (
        MfaChallenge.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(token_hash=challenge_token_hash(mfa_token))
        .first()
    )
    return _live(challenge, now or timezone.now())
