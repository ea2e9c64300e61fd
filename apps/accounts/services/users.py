from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Session, User, normalize_email
from apps.accounts.services.email_change import email_change_request
from apps.accounts.services.sessions import user_tokens_revoke
from apps.audit.services import audit_record, changes_between, snapshot
from apps.core.errors import ConflictError, ForbiddenError, ValidationError
from apps.core.tenancy import in_public_schema
from apps.jobs.events import event_record
from apps.rbac.grants import require_outranks, user_grants
from apps.rbac.services import ensure_not_last_owner, member_grant, owner_grant

EMAIL_TAKEN = "Email already registered"
USERNAME_TAKEN = "Username already taken"
# What the audit log keeps of a new user (never the password or its hash).
_AUDITED_FIELDS = ("email", "username", "full_name", "is_active", "is_staff")


def username_from_email(email: str) -> str:
    local = normalize_email(email).split("@", 1)[0]
    return re.sub(r"[^\w.@+-]", "", local)[:150] or "user"


def _identity_errors(*, email: str | None, username: str | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if email is not None:
        try:
            validate_email(email)
        except DjangoValidationError as exc:
            errors["email"] = list(exc.messages)
    if username is not None:
        try:
            if not username:
                raise DjangoValidationError("This field is required.")
            User._meta.get_field("username").run_validators(username)
        except DjangoValidationError as exc:
            errors["username"] = list(exc.messages)
    return errors


def _ensure_free(*, user: User, email: str | None, username: str | None) -> None:
    """409 when another live user already has the address or the name."""
    others = User.objects.live().exclude(pk=user.pk)
    if email is not None and others.with_email(email).exists():
        raise ConflictError(EMAIL_TAKEN, details={"email": [EMAIL_TAKEN]})
    if username is not None and others.with_username(username).exists():
        raise ConflictError(USERNAME_TAKEN, details={"username": [USERNAME_TAKEN]})


def user_create(
    *,
    email: str,
    password: str | None,
    username: str | None = None,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """Create a user in the current schema, with every check the API promises.

    Raises ValidationError (422) for bad input and ConflictError (409) when the
    e-mail or username belongs to a live user of this schema. `password` None: no
    password sign-in (single sign-on, or a reset link later).
    """
    email = normalize_email(email)
    username = (username or username_from_email(email)).strip()
    errors = _identity_errors(email=email, username=username)
    if len(full_name) > 255:
        errors["full_name"] = ["At most 255 characters."]
    candidate = User(email=email, username=username, full_name=full_name)
    if password is not None:
        try:
            validate_password(password, user=candidate)
        except DjangoValidationError as exc:
            errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(details=errors)

    _ensure_free(user=candidate, email=email, username=username)

    candidate.is_staff = is_staff
    candidate.is_superuser = is_superuser
    candidate.set_password(password)  # None: an unusable password
    try:
        with transaction.atomic():
            candidate.save()
            # Every user of a tenant starts with the member role (the tenant may edit or take
            # it away); the public schema (platform operators) has no roles.

            if not in_public_schema():
                member_grant(user=candidate)
            event_record(
                type="user.created",
                source="accounts",
                data={"user_id": candidate.pk, "email": candidate.email},
            )
            audit_record(
                action="user.created",
                target=candidate,
                changes=snapshot(candidate, _AUDITED_FIELDS),
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent sign-up of the same address or name.
        field = "username" if "username" in str(exc) else "email"
        message = USERNAME_TAKEN if field == "username" else EMAIL_TAKEN
        raise ConflictError(message, details={field: [message]}) from None
    return candidate


def superuser_create(
    *, email: str, password: str | None, username: str | None = None, full_name: str = ""
) -> User:
    """A superuser of the current schema, as `manage.py createsuperuser` makes one: staff and
    superuser, with user_create's checks, event and audit row; in a tenant also the owner
    role, as the tenant's first admin gets (roles are what the API checks)."""
    with transaction.atomic():
        user = user_create(
            email=email,
            password=password,
            username=username,
            full_name=full_name,
            is_staff=True,
            is_superuser=True,
        )
        if not in_public_schema():
            owner_grant(user=user)
    return user


_PROFILE_FIELDS = ("username", "full_name", "phone_number")
_MANAGED_FIELDS = ("email", "username", "full_name", "phone_number", "is_active", "is_staff")


def phone_number_normalize(raw: str) -> str:
    """The E.164 form of what people type: "+44 20 7946-0958" -> "+442079460958".

    Raises ValidationError (422 on phone_number) for anything else; "" clears it.
    """
    phone = re.sub(r"[\s().-]", "", raw)
    try:
        User._meta.get_field("phone_number").run_validators(phone)
    except DjangoValidationError as exc:
        raise ValidationError(details={"phone_number": list(exc.messages)}) from None
    return phone


def user_update(*, user: User, changes: dict[str, Any], by: User | None, managed: bool) -> User:
    """Change a user. `managed`: by someone who manages users (any of _MANAGED_FIELDS);
    otherwise a person editing their own profile (_PROFILE_FIELDS only). `by`: who asks
    (None: the system, which nobody outranks).

    A manager may change only users who hold no permission the manager lacks (403), and
    the staff flag only with users.manage held everywhere. A new e-mail address is only
    asked for: it takes effect once confirmed by a link sent to it (email_change.py).
    Deactivating a user ends every session and access token they have; the tenant's last
    owner cannot be deactivated (409).
    """
    allowed = _MANAGED_FIELDS if managed else _PROFILE_FIELDS
    refused = sorted(set(changes) - set(allowed))
    if refused:
        raise ValidationError(
            details={name: ["This field cannot be changed here."] for name in refused}
        )
    if "email" in changes:
        changes["email"] = normalize_email(str(changes["email"]))
    if "username" in changes:
        changes["username"] = str(changes["username"]).strip()
    if "full_name" in changes and len(str(changes["full_name"])) > 255:
        raise ValidationError(details={"full_name": ["At most 255 characters."]})
    if "phone_number" in changes:
        changes["phone_number"] = phone_number_normalize(str(changes["phone_number"]))
    errors = _identity_errors(email=changes.get("email"), username=changes.get("username"))
    if errors:
        raise ValidationError(details=errors)
    changed = {field: value for field, value in changes.items() if getattr(user, field) != value}
    if not changed:
        return user
    if by is not None:
        _require_may_change(by=by, user=user, fields=changed)
    _ensure_free(user=user, email=changed.get("email"), username=changed.get("username"))

    new_email = changed.pop("email", None)
    before = snapshot(user, changed)
    try:
        with transaction.atomic():
            if changed.get("is_active") is False:
                ensure_not_last_owner(user)
            if changed:
                for field, value in changed.items():
                    setattr(user, field, value)
                user.save(update_fields=[*changed, "updated_at"])
                if changed.get("is_active") is False:
                    user_tokens_revoke(user=user, reason=Session.RevokeReason.USER_DEACTIVATED)
                event_record(
                    type="user.updated",
                    source="accounts",
                    data={"user_id": user.pk, "updated_fields": sorted(changed)},
                )
                audit_record(
                    action="user.updated",
                    target=user,
                    changes=changes_between(before, snapshot(user, changed)),
                )
            if new_email is not None:
                email_change_request(user=user, new_email=new_email)
    except IntegrityError:
        raise ConflictError("Email or username already taken") from None
    return user


STAFF_NEEDS_UNSCOPED = "Only holders of users.manage everywhere may change the staff flag."


def _require_may_change(*, by: User, user: User, fields: dict[str, Any]) -> None:
    """403 unless `by` may make these changes to `user` (see user_update)."""
    require_outranks(by, user)
    if "is_staff" in fields and not (by.is_superuser or user_grants(by).everywhere("users.manage")):
        raise ForbiddenError(STAFF_NEEDS_UNSCOPED)


@transaction.atomic
def user_superuser_set(*, user: User, is_superuser: bool, by: User) -> User:
    """The schema's superuser flag: its admin lets a superuser do anything, so only a
    superuser who outranks the user may set or clear it (403)."""
    if not by.is_superuser:
        raise ForbiddenError("Only superusers may change the superuser flag.")
    require_outranks(by, user)
    if user.is_superuser == is_superuser:
        return user
    user.is_superuser = is_superuser
    user.save(update_fields=["is_superuser", "updated_at"])
    event_record(
        type="user.updated",
        source="accounts",
        data={"user_id": user.pk, "updated_fields": ["is_superuser"]},
    )
    audit_record(
        action="user.updated",
        target=user,
        changes={"is_superuser": [not is_superuser, is_superuser]},
    )
    return user


@transaction.atomic
def user_delete(*, user: User, by: User | None) -> None:
    """Soft delete: the user cannot sign in, every session ends, the row stays until purged.

    Nobody deletes a user who outranks them (403); the tenant's last owner cannot be
    deleted (409)."""
    if by is not None and user.pk == by.pk:
        raise ValidationError("You cannot delete your own account here.")
    if user.is_deleted:
        return

    if by is not None:
        require_outranks(by, user)

    ensure_not_last_owner(user)

    user.is_deleted = True
    user.deleted_at = timezone.now()
    user.save(update_fields=["is_deleted", "deleted_at", "updated_at"])
    user_tokens_revoke(user=user, reason=Session.RevokeReason.USER_DELETED)
    event_record(type="user.deleted", source="accounts", data={"user_id": user.pk})
    audit_record(action="user.deleted", target=user)


def user_restore(*, user: User, by: User | None) -> User:
    """Undo a soft delete, unless a live user has taken the address or name since (409);
    nobody restores a user who outranks them (403)."""
    if not user.is_deleted:
        return user
    if by is not None:
        require_outranks(by, user)
    _ensure_free(user=user, email=user.email, username=user.username)
    try:
        with transaction.atomic():
            user.is_deleted = False
            user.deleted_at = None
            user.save(update_fields=["is_deleted", "deleted_at", "updated_at"])
            event_record(type="user.restored", source="accounts", data={"user_id": user.pk})
            audit_record(action="user.restored", target=user)
    except IntegrityError:
        raise ConflictError("Email or username already taken") from None
    return user


@transaction.atomic
def users_purge(*, older_than_days: int, now: datetime | None = None) -> int:
    """Delete users soft-deleted more than `older_than_days` ago (the retention period).

    Returns how many users were deleted; each leaves one audit row, by the system.
    """
    horizon = (now or timezone.now()) - timedelta(days=older_than_days)
    expired = list(
        User.objects.select_for_update()
        .filter(is_deleted=True, deleted_at__lt=horizon)
        .values_list("pk", "deleted_at")
    )
    if not expired:
        return 0
    User.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
    for pk, deleted_at in expired:
        # The address goes with the user: a purge is the end of their personal data here.
        audit_record(
            action="user.purged",
            target_type="user",
            target_id=pk,
            changes={"deleted_at": deleted_at},
            actor=None,
        )
    return len(expired)
