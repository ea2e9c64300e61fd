"""Changing a user's e-mail address: it takes effect only once the new address confirms.

Whoever changes someone's address (a user manager, the admin) only asks for it:
the new address is kept as `pending_email` and gets a link; the old address is
told at once, and again when the change is made. Following the link within
EMAIL_CHANGE_TIMEOUT_MINUTES makes the change; asking again, or the change being
made, voids every earlier link.

The link's token is signed (Django's signing, with the project's secret key) over
the tenant's schema, the user, the pending address and the instant it was asked
for, so it names one request of one tenant and nothing needs storing beside the
user row.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import User, normalize_email
from apps.accounts.services.links import tenant_link
from apps.audit.services import audit_record
from apps.core.errors import ConflictError, ValidationError
from apps.core.tenancy import current_schema
from apps.jobs.events import event_record

logger = structlog.get_logger("apps.accounts.email_change")

EMAIL_TAKEN = "Email already registered"
LINK_INVALID = "This confirmation link is invalid or has expired."
_SALT = "apps.accounts.email_change"


def email_change_request(*, user: User, new_email: str) -> None:
    """Keep `new_email` as the user's pending address and have it mailed a link.

    Called inside the transaction of the user's update (`user_update`), after its
    checks; the mails go out from a worker once it commits (`user.email_change_requested`).
    """
    user.pending_email = new_email
    user.pending_email_requested_at = timezone.now()
    user.save(update_fields=["pending_email", "pending_email_requested_at", "updated_at"])
    event_record(
        type="user.email_change_requested",
        source="accounts",
        data={"user_id": user.pk, "new_email": new_email},
        metadata={"security": True},
    )
    audit_record(
        action="user.email_change_requested",
        target=user,
        changes={"email": [user.email, new_email]},
    )


def _token(user: User) -> str:
    assert user.pending_email and user.pending_email_requested_at  # noqa: S101
    return signing.dumps(
        {
            "t": current_schema(),
            "u": user.pk,
            "e": user.pending_email,
            "at": user.pending_email_requested_at.isoformat(),
        },
        salt=_SALT,
        compress=True,
    )


def email_change_mails_send(*, user_id: int, new_email: str) -> bool:
    """Mail the link to the new address and a notice to the old one (a worker, after commit).

    Returns False when there is nothing to send: the request was made, voided by a newer
    one, or the user is gone. Called outside any transaction: the mails are provider calls.
    """
    user = User.objects.live().filter(pk=user_id, is_active=True).first()
    if user is None or user.pending_email != new_email:
        return False
    context = {
        "user": user,
        "new_email": new_email,
        "link": tenant_link(settings.EMAIL_CHANGE_CONFIRM_URL, token=_token(user)),
        "minutes": settings.EMAIL_CHANGE_TIMEOUT_MINUTES,
    }
    _mail("accounts/email_change_confirm", context, to=new_email).send()
    _mail("accounts/email_change_requested_notice", context, to=user.email).send()
    return True


def email_changed_notice_send(*, user_id: int, old_email: str, new_email: str) -> None:
    """Tell the old address that the change was made (a worker, after commit)."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    context = {"user": user, "old_email": old_email, "new_email": new_email}
    _mail("accounts/email_changed_notice", context, to=old_email).send()


def _mail(template: str, context: dict[str, Any], *, to: str) -> EmailMultiAlternatives:
    return EmailMultiAlternatives(
        subject=render_to_string(f"{template}_subject.txt", context).strip(),
        body=render_to_string(f"{template}.txt", context),
        to=[to],
    )


@transaction.atomic
def email_change_confirm(*, token: str) -> User:
    """Make the change the link's token names. 422 on `token` when it is forged, expired,
    from another tenant or voided; 409 when a live user has taken the address since."""
    invalid = ValidationError(details={"token": [LINK_INVALID]})
    try:
        claims = signing.loads(
            token, salt=_SALT, max_age=settings.EMAIL_CHANGE_TIMEOUT_MINUTES * 60
        )
        schema, user_id, new_email, asked_at = claims["t"], claims["u"], claims["e"], claims["at"]
    except (signing.BadSignature, KeyError, TypeError):
        raise invalid from None
    if schema != current_schema():
        raise invalid
    user = User.objects.live().select_for_update().filter(pk=user_id, is_active=True).first()
    if (
        user is None
        or not user.pending_email
        or user.pending_email != new_email
        or user.pending_email_requested_at is None
        or user.pending_email_requested_at.isoformat() != asked_at
    ):
        raise invalid
    new_email = normalize_email(new_email)
    if User.objects.live().exclude(pk=user.pk).with_email(new_email).exists():
        raise ConflictError(EMAIL_TAKEN, details={"email": [EMAIL_TAKEN]})
    old_email = user.email
    user.email = new_email
    user.pending_email = ""
    user.pending_email_requested_at = None
    try:
        with transaction.atomic():
            user.save(
                update_fields=["email", "pending_email", "pending_email_requested_at", "updated_at"]
            )
    except IntegrityError:
        raise ConflictError(EMAIL_TAKEN, details={"email": [EMAIL_TAKEN]}) from None
    event_record(
        type="user.updated",
        source="accounts",
        data={"user_id": user.pk, "updated_fields": ["email"]},
    )
    event_record(
        type="user.email_changed",
        source="accounts",
        data={"user_id": user.pk, "old_email": old_email, "new_email": new_email},
        metadata={"security": True},
    )
    # The owner of the new address proved it by the link: they are the actor.
    audit_record(
        action="user.email_changed",
        target=user,
        changes={"email": [old_email, new_email]},
        actor=user,
    )
    logger.info("email_changed", user_id=user.pk)
    return user
