"""Changing and resetting passwords; both end every session of the user."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import structlog
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import PasswordResetToken, Session, User, normalize_email
from apps.accounts.services.links import tenant_link
from apps.accounts.services.sessions import ClientInfo, session_start, user_tokens_revoke
from apps.accounts.tokens import TokenPair
from apps.audit.services import audit_record
from apps.core.errors import ValidationError
from apps.jobs.events import event_record
from apps.sso.selectors import password_refused_for

logger = structlog.get_logger("apps.accounts.passwords")

RESET_LINK_INVALID = "This reset link is invalid or has expired."


def _password_errors(password: str, user: User) -> list[str]:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def password_change(
    *, user: User, old_password: str, new_password: str, client: ClientInfo
) -> TokenPair:
    """Set a new password, end every session and every access token, and sign this device in
    again (the returned pair)."""
    # The request's user may come from the auth cache, without its hash; lock the row
    # so two changes at once cannot both pass the old-password check.
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.check_password(old_password):
        raise ValidationError(details={"old_password": ["The current password is not correct."]})
    if problems := _password_errors(new_password, user):
        raise ValidationError(details={"new_password": problems})
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    user_tokens_revoke(user=user, reason=Session.RevokeReason.PASSWORD_CHANGED)
    event_record(
        type="auth.password_changed",
        source="accounts",
        data={"user_id": user.pk, "how": "change"},
        metadata={"security": True, "ip_address": client.ip_address},
    )
    # The fact only: neither password nor hash belongs in the log.
    audit_record(action="user.password_changed", target=user)
    return session_start(user=user, client=client)


@transaction.atomic
def password_set(*, user: User, new_password: str | None, how: str) -> int:
    """Set a user's password for them (None: no password sign-in at all), as the admin does.

    Ends every session and access token of the user, like a reset, and sends them the
    security notice. Whoever sets it must be allowed to change this user: the caller checks
    (the admin's change permission asks `require_outranks`). Returns the sessions ended."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if new_password is None:
        user.set_unusable_password()
    else:
        if problems := _password_errors(new_password, user):
            raise ValidationError(details={"password": problems})
        user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    ended = user_tokens_revoke(user=user, reason=Session.RevokeReason.PASSWORD_RESET)
    event_record(
        type="auth.password_changed",
        source="accounts",
        data={"user_id": user.pk, "how": how},
        metadata={"security": True},
    )
    audit_record(action="user.password_reset", target=user, changes={"sessions_ended": ended})
    return ended


@transaction.atomic
def password_reset_request(*, email: str, client: ClientInfo) -> None:
    """Record the request; a worker mails the link if the address is a user's.

    The caller's answer and its timing are the same whether or not the address
    exists: nothing here looks the user up.
    """
    event_record(
        type="auth.password_reset_requested",
        source="accounts",
        data={"email": normalize_email(email)},
        metadata={"security": True, "ip_address": client.ip_address},
    )


def password_reset_send(*, request_event_id: str, email: str) -> bool:
    """Create a single-use reset token and mail its link, once per request event.

    Returns whether a mail was sent. The token is committed first, then mailed,
    outside any transaction (a provider call holds no transaction open). If the
    send fails, the token is deleted again and the error raised: the task retries
    with a new token, as if this run had not happened.
    """
    user = User.objects.with_email(email).filter(is_active=True).first()
    if user is None:
        return False

    if password_refused_for(user):
        return False  # SSO is required of this user: no password to reset (same answer)
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    try:
        with transaction.atomic():
            reset = PasswordResetToken.objects.create(
                user=user,
                token_hash=_token_hash(token),
                request_event_id=request_event_id,
                expires_at=now + timedelta(minutes=settings.PASSWORD_RESET_TIMEOUT_MINUTES),
            )
    except IntegrityError:
        return False  # this request was handled already
    try:
        _reset_mail(user, token).send()
    except BaseException:
        PasswordResetToken.objects.filter(pk=reset.pk).delete()
        raise
    return True


def _reset_mail(user: User, token: str) -> EmailMultiAlternatives:
    context = {
        "user": user,
        "link": tenant_link(settings.PASSWORD_RESET_URL, token=token),
        "minutes": settings.PASSWORD_RESET_TIMEOUT_MINUTES,
    }
    mail = EmailMultiAlternatives(
        subject=render_to_string("accounts/password_reset_subject.txt", context).strip(),
        body=render_to_string("accounts/password_reset_email.txt", context),
        to=[user.email],
    )
    mail.attach_alternative(
        render_to_string("accounts/password_reset_email.html", context), "text/html"
    )
    return mail


@transaction.atomic
def password_reset_confirm(*, token: str, new_password: str, client: ClientInfo) -> None:
    reset = (
        PasswordResetToken.objects.select_for_update()
        .select_related("user")
        .filter(token_hash=_token_hash(token), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if reset is None or reset.user.is_deleted or not reset.user.is_active:
        raise ValidationError(details={"token": [RESET_LINK_INVALID]})

    if password_refused_for(reset.user):
        # A link sent before SSO became required.
        raise ValidationError(details={"token": [RESET_LINK_INVALID]})
    user = reset.user
    if problems := _password_errors(new_password, user):
        raise ValidationError(details={"new_password": problems})
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    # Every outstanding link of this user dies with this one.
    PasswordResetToken.objects.filter(user=user, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    user_tokens_revoke(user=user, reason=Session.RevokeReason.PASSWORD_RESET)
    event_record(
        type="auth.password_changed",
        source="accounts",
        data={"user_id": user.pk, "how": "reset"},
        metadata={"security": True, "ip_address": client.ip_address},
    )
    # Nobody is signed in here; the reset link proved who asked, so they are the actor.
    audit_record(action="user.password_reset", target=user, actor=user)
