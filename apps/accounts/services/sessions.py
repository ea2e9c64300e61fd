"""Signing in and out: sessions (refresh-token families), rotation, revocation."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.authentication import session_state_mark_ended
from apps.accounts.models import PasswordResetToken, Session, User
from apps.accounts.selectors import sign_in_candidate_get
from apps.accounts.tokens import (
    InvalidToken,
    TokenPair,
    refresh_token_decode,
    token_pair_issue,
)
from apps.audit.services import audit_record
from apps.core.errors import ForbiddenError, NotFoundError, UnauthorizedError
from apps.core.net import client_ip
from apps.jobs.events import event_record
from apps.mfa.services.challenges import MfaPending, challenge_start
from apps.mfa.services.requirement import sign_in_mfa

logger = structlog.get_logger("apps.accounts.sessions")

INVALID_CREDENTIALS = "Invalid email or password"
SSO_REQUIRED = (
    "This organization signs in through its identity provider; passwords are not accepted."
)


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None
    user_agent: str

    @classmethod
    def of(cls, request: HttpRequest) -> ClientInfo:
        address = client_ip(request)
        try:
            ipaddress.ip_address(address)
        except ValueError:
            address = ""  # e.g. a Unix socket: no address to record
        return cls(
            ip_address=address or None,
            user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:512],
        )


def _session_new(*, user: User, client: ClientInfo, now: datetime, amr: list[str]) -> Session:
    return Session(
        user=user,
        last_used_at=now,
        expires_at=now + settings.SESSION_MAX_AGE,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        amr=amr,
        auth_time=now,
    )


def _session_start(
    *,
    user: User,
    client: ClientInfo,
    now: datetime,
    roles: list[str] | None = None,
    amr: list[str] | None = None,
) -> TokenPair:
    """Store a new session (a refresh-token family) and the pair that opens it. `amr`: how
    the user proved who they are (default: a password)."""
    session = _session_new(user=user, client=client, now=now, amr=amr or ["pwd"])
    pair = token_pair_issue(user=user, session=session, now=now, roles=roles)
    session.refresh_jti = pair.refresh_jti
    session.save()
    return pair


def _password_check(user: User, password: str) -> tuple[bool, bool]:
    """Whether `password` is the user's, and whether its hash was made with outdated
    parameters (Django's `check_password`; re-hashing is the caller's, once it has let the
    user in)."""
    outdated: list[bool] = []
    correct = check_password(password, user.password, setter=lambda raw: outdated.append(True))
    return correct, bool(outdated)


def session_login(*, email: str, password: str, client: ClientInfo) -> TokenPair | MfaPending:
    """Start a session: read the user, check the password, then write.

    Unknown address, wrong password, inactive or deleted user: the same 401 after the same
    work (one query, one password hash; an unknown address hashes the password it was given,
    as long as checking a real one takes). Where the tenant requires single sign-on of the
    user, a 403, told only to someone who knew the password (so the answer does not say
    which accounts are break-glass). Only then, in one transaction: the password re-hashed
    if its hash has outdated parameters (not a change of password: no event, no
    revocation), the last sign-in, the new session. The tokens leave once that committed.

    When a second factor is due (the user has one, or the tenant's policy requires one and
    its grace period is over: apps/mfa/services/requirement.py), no session and no last
    sign-in: only a sign-in challenge is stored, and its `MfaPending` answered; POST
    /auth/mfa/verify completes it. Within a grace period the session starts and the answer
    says by when to enrol.

    The brute-force limits are the caller's (apps/accounts/limits.py: counted before this
    runs, given back once it succeeded)."""
    candidate = sign_in_candidate_get(email=email)
    if candidate is None:
        make_password(password)  # as long as checking a real password takes
        raise UnauthorizedError(INVALID_CREDENTIALS)
    user = candidate.user
    correct, outdated = _password_check(user, password)
    if not correct or not user.is_active:
        raise UnauthorizedError(INVALID_CREDENTIALS)
    if candidate.password_refused:
        raise ForbiddenError(SSO_REQUIRED, code="SSO_REQUIRED")
    mfa = sign_in_mfa(user, has_mfa=candidate.has_mfa)
    now = timezone.now()
    with transaction.atomic():
        fields = ["last_login"]
        if outdated:
            user.set_password(password)
            user._password = None  # type: ignore[attr-defined]  # no password_changed signal
            fields.append("password")
        if mfa is not None and mfa.challenge:
            if outdated:
                user.save(update_fields=["password"])
            return challenge_start(
                user=user,
                ip_address=client.ip_address,
                user_agent=client.user_agent,
                enrolment_required=mfa.enrolment_required,
                now=now,
            )
        user.last_login = now
        # The cached state (GET /users/me) is dropped after commit (accounts/signals.py).
        user.save(update_fields=fields)
        pair = _session_start(user=user, client=client, now=now, roles=candidate.roles)
    if mfa is not None and mfa.enrol_by is not None:
        notices = {"mfa_enrolment_required": True, "mfa_enrol_by": mfa.enrol_by.isoformat()}
        return replace(pair, notices=notices)
    return pair


def sessions_revoke(sessions: QuerySet[Session], *, reason: str) -> int:
    """End the live sessions of `sessions`; their access tokens fail from the next request."""
    now = timezone.now()
    ids = [str(pk) for pk in sessions.filter(revoked_at__isnull=True).values_list("pk", flat=True)]
    if not ids:
        return 0
    Session.objects.filter(pk__in=ids).update(revoked_at=now, revoke_reason=reason)
    # Marked ended in the cache at once (should this transaction roll back, the
    # worst outcome is signing in again) and again after commit, in case a
    # request re-cached the session as live in between.
    session_state_mark_ended(ids)
    transaction.on_commit(lambda: session_state_mark_ended(ids))
    return len(ids)


@transaction.atomic
def sessions_revoke_audited(*, sessions: QuerySet[Session], reason: str) -> int:
    """End the live sessions of `sessions`, one audit row each, as a user's own revocation
    writes (for the admin's "revoke" action; who did it comes from the request)."""
    live = list(sessions.filter(revoked_at__isnull=True).values_list("pk", "user_id"))
    ended = sessions_revoke(Session.objects.filter(pk__in=[pk for pk, _ in live]), reason=reason)
    for pk, user_id in live:
        audit_record(
            action="session.revoked",
            target_type="session",
            target_id=str(pk),
            changes={"user_id": user_id, "reason": str(reason)},
        )
    return ended


def user_tokens_revoke(*, user: User, reason: str) -> int:
    """End every session of `user` and refuse every access token issued until now."""
    user.tokens_valid_after = timezone.now()
    user.save(update_fields=["tokens_valid_after", "updated_at"])
    return sessions_revoke(Session.objects.filter(user=user), reason=reason)


def session_refresh(*, refresh_token: str, client: ClientInfo) -> TokenPair:
    """Rotate the session's refresh token. Replaying an already rotated token ends the session
    (after a short grace period for two tabs refreshing at once, which is simply refused)."""
    try:
        claims = refresh_token_decode(refresh_token)
    except InvalidToken as exc:
        raise UnauthorizedError(f"Invalid refresh token: {exc}") from None
    now = timezone.now()
    reused = False
    with transaction.atomic():
        # The row lock serialises concurrent refreshes of one session: one rotates,
        # the others then see a token that is no longer current.
        session = (
            Session.objects.select_for_update()
            .select_related("user")
            .filter(pk=claims.session_id, user_id=claims.user_id)
            .first()
        )
        if session is None or not session.is_live:
            raise UnauthorizedError("Session has ended")
        user = session.user
        if not user.is_active or user.is_deleted:
            raise UnauthorizedError("User not found or inactive")
        if claims.jti != session.refresh_jti:
            grace = timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS)
            if (
                claims.jti == session.previous_refresh_jti
                and session.rotated_at is not None
                and now - session.rotated_at <= grace
            ):
                raise UnauthorizedError("Refresh token already used")
            sessions_revoke(
                Session.objects.filter(pk=session.pk), reason=Session.RevokeReason.REFRESH_REUSED
            )
            event_record(
                type="auth.refresh_token_reused",
                source="accounts",
                data={"user_id": user.pk, "session_id": str(session.pk)},
                metadata={"security": True, "ip_address": client.ip_address},
            )
            logger.warning(
                "refresh_token_reused",
                user_id=user.pk,
                session_id=str(session.pk),
                ip=client.ip_address,
            )
            reused = True
        else:
            pair = token_pair_issue(user=user, session=session, now=now)
            session.previous_refresh_jti = session.refresh_jti
            session.refresh_jti = pair.refresh_jti
            session.rotated_at = now
            session.last_used_at = now
            session.ip_address = client.ip_address
            session.user_agent = client.user_agent
            session.save(
                update_fields=[
                    "previous_refresh_jti", "refresh_jti", "rotated_at", "last_used_at",
                    "ip_address", "user_agent",
                ]
            )  # fmt: skip
    if reused:
        # Raised after the block, so the revocation above is committed.
        raise UnauthorizedError("Refresh token reuse detected; the session has been ended")
    return pair


@transaction.atomic
def session_logout(*, refresh_token: str) -> int:
    """End the session the refresh token belongs to (any token of its family will do)."""
    try:
        claims = refresh_token_decode(refresh_token)
    except InvalidToken as exc:
        raise UnauthorizedError(f"Invalid refresh token: {exc}") from None
    sessions = Session.objects.filter(pk=claims.session_id, user_id=claims.user_id)
    revoked = sessions_revoke(sessions, reason=Session.RevokeReason.LOGOUT)
    if revoked:
        # Nobody is signed in here; the refresh token proved whose session it was.
        audit_record(
            action="session.revoked",
            target_type="session",
            target_id=claims.session_id,
            changes={"user_id": claims.user_id, "reason": str(Session.RevokeReason.LOGOUT)},
            actor=User.objects.filter(pk=claims.user_id).first(),
        )
    return revoked


@transaction.atomic
def sessions_logout_all(*, user: User) -> int:
    revoked = user_tokens_revoke(user=user, reason=Session.RevokeReason.LOGOUT_ALL)
    audit_record(action="user.sessions_revoked", target=user, changes={"count": revoked})
    return revoked


@transaction.atomic
def session_revoke(*, user: User, session_id: str) -> None:
    sessions = Session.objects.live().filter(pk=session_id, user=user)
    if not sessions_revoke(sessions, reason=Session.RevokeReason.REVOKED_BY_USER):
        raise NotFoundError("Session not found")
    audit_record(
        action="session.revoked",
        target_type="session",
        target_id=session_id,
        changes={"user_id": user.pk, "reason": str(Session.RevokeReason.REVOKED_BY_USER)},
    )


def session_start(
    *, user: User, client: ClientInfo, amr: list[str] | None = None, roles: list[str] | None = None
) -> TokenPair:
    """A new session for a user who just proved who they are (after a password change,
    a single sign-on, a second factor); `amr` says how (default ["pwd"])."""
    return _session_start(user=user, client=client, now=timezone.now(), amr=amr, roles=roles)


def session_second_factor(*, user: User, session_id: str, amr: str) -> TokenPair:
    """Record on `user`'s live session a second factor they have just verified (a step-up):
    its `amr` gains the method, `auth_time` becomes now, and a new token pair of the SAME
    session is returned (the refresh token rotated as a refresh would: the old one is then
    a replay)."""
    now = timezone.now()
    with transaction.atomic():
        session = Session.objects.select_for_update().filter(pk=session_id, user=user).first()
        if session is None or not session.is_live:
            raise UnauthorizedError("Session has ended")
        methods = list(session.amr or ["pwd"])
        if amr not in methods:
            methods.append(amr)
        session.amr = methods
        session.auth_time = now
        pair = token_pair_issue(user=user, session=session, now=now)
        session.previous_refresh_jti = session.refresh_jti
        session.refresh_jti = pair.refresh_jti
        session.rotated_at = now
        session.last_used_at = now
        session.save(
            update_fields=[
                "amr", "auth_time", "previous_refresh_jti", "refresh_jti", "rotated_at",
                "last_used_at",
            ]
        )  # fmt: skip
    return pair


def auth_records_cleanup(*, now: datetime | None = None, keep_days: int = 7) -> dict[str, int]:
    """Delete sessions that ended (expired or revoked) more than `keep_days` ago and
    password reset tokens that were used or expired. Run daily by the jobs issue's schedule."""
    now = now or timezone.now()
    horizon = now - timedelta(days=keep_days)
    sessions, _ = Session.objects.filter(expires_at__lt=horizon).delete()
    revoked, _ = Session.objects.filter(revoked_at__lt=horizon).delete()
    resets, _ = PasswordResetToken.objects.filter(expires_at__lt=now).delete()
    used, _ = PasswordResetToken.objects.filter(used_at__isnull=False).delete()
    return {"sessions": sessions + revoked, "password_reset_tokens": resets + used}
