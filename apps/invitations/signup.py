"""Self sign-up, where a tenant turns it on, and the link that verifies the address.

`Tenant.settings["signup"] = {"enabled": bool, "allowed_domains": [...], "default_role":
"<role name>"}` (off when absent). A signed-up account cannot sign in until its owner
follows the link mailed to the address (`User.email_verified`). The answer to a sign-up
is the same whether or not the address has an account: a verified account is left as it
is. Each link carries the password of the sign-up that asked for it and sets it when
followed, so whoever signed up with somebody else's address first gains nothing: the
owner's own sign-up mails a link that sets the owner's password.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User, normalize_email
from apps.accounts.services.links import tenant_link
from apps.accounts.services.users import user_create
from apps.audit.services import audit_record
from apps.core.errors import ConflictError, ForbiddenError, ValidationError
from apps.invitations.links import mail, tenant_name, tenant_settings, token_hash, token_new
from apps.invitations.models import EmailVerification
from apps.invitations.services import SSO_REQUIRED, sso_required
from apps.invitations.signup_settings import SignupSettings, signup_settings_errors
from apps.jobs.events import event_record
from apps.rbac.catalogue import MEMBER, OWNER
from apps.rbac.models import Role, RoleAssignment
from apps.rbac.services import assignment_audit

logger = structlog.get_logger("apps.invitations.signup")

DISABLED = "Sign-up is not open here; ask an administrator for an invitation."
DOMAIN_REFUSED = "Sign-up is not open to addresses of this domain."
LINK_INVALID = "This verification link is invalid, has expired or was already used."


def signup_role_errors(value: Any) -> list[str]:
    """In the tenant's schema: whether `signup.default_role` names a role a stranger may get
    (any but the owner role)."""
    name = value.get("default_role", "") if isinstance(value, dict) else ""
    if not name:
        return []
    role = Role.objects.filter(name__iexact=name).first()
    if role is None:
        return [f"signup.default_role: no role is named {name!r}."]
    if role.system_key == OWNER:
        return ["signup.default_role: the owner role cannot be given by sign-up."]
    return []


def signup_settings() -> SignupSettings:
    raw = tenant_settings().get("signup")
    if not isinstance(raw, dict) or signup_settings_errors(raw):
        return SignupSettings()
    return SignupSettings(
        enabled=raw.get("enabled", False),
        allowed_domains=tuple(raw.get("allowed_domains", [])),
        default_role=raw.get("default_role", ""),
    )


def _verification_requested(user: User, *, password_hash: str) -> None:
    """Have a link mailed (after commit) that verifies the address and sets this password."""
    verification = EmailVerification.objects.create(
        user=user,
        password_hash=password_hash,
        expires_at=timezone.now() + timedelta(hours=settings.EMAIL_VERIFY_HOURS),
    )
    event_record(
        type="user.signed_up",
        source="invitations",
        data={"user_id": user.pk, "verification_id": verification.pk},
    )


def _default_role_grant(user: User, config: SignupSettings) -> None:
    if not config.default_role:
        return
    role = Role.objects.filter(name__iexact=config.default_role).first()
    if role is None or role.system_key in (OWNER, MEMBER):
        return  # deleted since, or what every user has anyway
    assignment = RoleAssignment.objects.create(user=user, role=role, organization=None)
    assignment_audit("role.assigned", assignment)


def signup_request(*, email: str, password: str, full_name: str) -> None:
    """Sign up `email`, or answer as if (see the module's docstring). 403 SIGNUP_DISABLED
    where the tenant has it off, 422 on `email` for a domain it does not allow, 403
    SSO_REQUIRED where the tenant signs in through its identity provider, 422 on
    `password` for one the validators refuse."""
    config = signup_settings()
    if not config.enabled:
        raise ForbiddenError(DISABLED, code="SIGNUP_DISABLED")
    email = normalize_email(email)
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationError(details={"email": list(exc.messages)}) from None
    if not config.allows(email):
        raise ValidationError.for_field("email", DOMAIN_REFUSED)
    if sso_required():
        raise ForbiddenError(SSO_REQUIRED, code="SSO_REQUIRED")
    try:
        validate_password(password, user=User(email=email, full_name=full_name))
    except DjangoValidationError as exc:
        raise ValidationError(details={"password": list(exc.messages)}) from None
    with transaction.atomic():
        existing = User.objects.with_email(email).select_for_update().first()
        if existing is None:
            try:
                with transaction.atomic():
                    user = user_create(email=email, password=password, full_name=full_name)
            except ConflictError:
                return  # a concurrent sign-up (or a username taken): the same answer
            user.email_verified = False
            user.save(update_fields=["email_verified", "updated_at"])
            _default_role_grant(user, config)
            action, password_hash = "user.signed_up", user.password
        elif not existing.email_verified and existing.is_active:
            # Not set now: only by following this sign-up's own link.
            user, action, password_hash = existing, "user.signed_up_again", make_password(password)
        else:
            make_password(password)  # as long as the other branches take
            return
        _verification_requested(user, password_hash=password_hash)
        audit_record(action=action, target=user, changes={"email": email}, actor=user)


def verification_send(*, verification_id: int) -> bool:
    """Make the link's token, keep its hash, mail the link (a worker, after commit). False
    when it was sent already or voided by a newer sign-up."""
    token, hashed = token_new()
    with transaction.atomic():
        verification = (
            EmailVerification.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=verification_id, token_hash__isnull=True, used_at__isnull=True)
            .first()
        )
        if verification is None:
            return False
        verification.token_hash = hashed
        verification.sent_at = timezone.now()
        verification.save(update_fields=["token_hash", "sent_at"])
    user = verification.user
    context = {
        "user": user,
        "tenant_name": tenant_name(),
        "link": tenant_link(settings.EMAIL_VERIFY_URL, token=token),
        "hours": settings.EMAIL_VERIFY_HOURS,
    }
    try:
        mail("invitations/email_verify", context, to=user.email).send()
    except BaseException:
        EmailVerification.objects.filter(pk=verification.pk, token_hash=hashed).update(
            token_hash=None
        )
        raise
    return True


def verification_records_cleanup() -> dict[str, int]:
    """Delete verification links that were used or have expired (the daily cleanup)."""
    spent, _ = EmailVerification.objects.filter(
        Q(used_at__isnull=False) | Q(expires_at__lt=timezone.now())
    ).delete()
    return {"email_verifications": spent}


@transaction.atomic
def email_verify(*, token: str) -> User:
    """Mark the address of the link's user verified: they can sign in from now on. 422 on
    `token` when it is unknown, expired, used or voided."""
    verification = (
        EmailVerification.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(token_hash=token_hash(token), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    user = verification.user if verification is not None else None
    if verification is None or user is None or user.is_deleted or not user.is_active:
        raise ValidationError.for_field("token", LINK_INVALID)
    verification.used_at = timezone.now()
    verification.token_hash = None
    verification.save(update_fields=["used_at", "token_hash"])
    # Every other link of the user dies with this one.
    EmailVerification.objects.filter(user=user, used_at__isnull=True).delete()
    user.email_verified = True
    fields = ["email_verified", "updated_at"]
    if verification.password_hash:
        user.password = verification.password_hash
        fields.append("password")
    user.save(update_fields=fields)
    event_record(type="user.email_verified", source="invitations", data={"user_id": user.pk})
    audit_record(
        action="user.email_verified", target=user, changes={"email": user.email}, actor=user
    )
    logger.info("email_verified", user_id=user.pk)
    return user
