from __future__ import annotations

import re

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from apps.accounts.models import User, normalize_email
from apps.core.errors import ConflictError, ValidationError
from apps.core.events import event_record

EMAIL_TAKEN = "Email already registered"
USERNAME_TAKEN = "Username already taken"


def username_from_email(email: str) -> str:
    local = normalize_email(email).split("@", 1)[0]
    return re.sub(r"[^\w.@+-]", "", local)[:150] or "user"


def user_create(
    *,
    email: str,
    password: str,
    username: str | None = None,
    full_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """Create a user in the current schema, with every check the API promises.

    Raises ValidationError (422) for bad input and ConflictError (409) when the
    e-mail or username belongs to a live user of this schema.
    """
    email = normalize_email(email)
    username = (username or username_from_email(email)).strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        errors["email"] = list(exc.messages)
    candidate = User(email=email, username=username, full_name=full_name)
    try:
        User._meta.get_field("username").run_validators(username)
        if not username:
            raise DjangoValidationError("This field is required.")
    except DjangoValidationError as exc:
        errors["username"] = list(exc.messages)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(details=errors)

    live = User.objects.live()
    if live.filter(email=email).exists():
        raise ConflictError(EMAIL_TAKEN, details={"email": [EMAIL_TAKEN]})
    if live.filter(username__iexact=username).exists():
        raise ConflictError(USERNAME_TAKEN, details={"username": [USERNAME_TAKEN]})

    candidate.is_staff = is_staff
    candidate.is_superuser = is_superuser
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
            event_record(
                type="user.created",
                source="accounts",
                data={"user_id": candidate.pk, "email": candidate.email},
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent sign-up of the same address or name.
        field = "username" if "username" in str(exc) else "email"
        message = USERNAME_TAKEN if field == "username" else EMAIL_TAKEN
        raise ConflictError(message, details={field: [message]}) from None
    return candidate
