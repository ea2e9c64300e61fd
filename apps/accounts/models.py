from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, Lower, Replace, StrIndex, Substr


def normalize_email(email: str) -> str:
    """The one spelling of an address we store and look up: trimmed, lower-cased.

    Lower-casing the local part too is deliberate: no mail provider in practice
    treats `Ann@x` and `ann@x` as different people, and treating them as two
    accounts invites takeover by look-alike sign-ups.
    """
    return email.strip().lower()


class UserQuerySet(models.QuerySet["User"]):
    def live(self) -> UserQuerySet:
        return self.filter(is_deleted=False)

    def with_email(self, email: str) -> UserQuerySet:
        """Live users with this address, found through the live-address unique index
        (`lower(email)`; a plain `email =` would read every user of the tenant)."""
        return self.live().alias(email_key=Lower("email")).filter(email_key=normalize_email(email))

    def with_username(self, username: str) -> UserQuerySet:
        """Live users with this name, any case, through the live-username unique index."""
        return (
            self.live()
            .alias(username_key=Lower("username"))
            .filter(username_key=username.strip().lower())
        )


class UserManager(BaseUserManager["User"]):
    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def live(self) -> UserQuerySet:
        return self.get_queryset().live()

    def with_email(self, email: str) -> UserQuerySet:
        return self.get_queryset().with_email(email)

    def with_username(self, username: str) -> UserQuerySet:
        return self.get_queryset().with_username(username)

    def get_by_natural_key(self, username: str | None) -> User:
        # Sign-in is by e-mail, among live users only.
        return self.get_queryset().with_email(username or "").get()

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        extra.setdefault("username", normalize_email(email).split("@", 1)[0])
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Lives in the public schema (platform operators)
    and in every tenant schema (that tenant's users)."""

    email = models.EmailField(max_length=254)
    username = models.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    full_name = models.CharField(max_length=255, blank=True)
    # For SMS notifications: E.164 ("+" and up to 15 digits), or empty.
    phone_number = models.CharField(
        max_length=16,
        blank=True,
        validators=[
            RegexValidator(r"^\+[1-9]\d{6,14}$", "Use the E.164 form: + and 7 to 15 digits.")
        ],
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May sign in to this schema's Django admin."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Access tokens issued before this instant are refused (logout-all, password
    # change or reset, deactivation, deletion).
    tokens_valid_after = models.DateTimeField(null=True, blank=True)
    # A new address someone asked for, waiting for its owner to follow the link mailed to
    # it (services/email_change.py); `email` changes only then. Empty: none.
    pending_email = models.EmailField(max_length=254, blank=True, default="", db_default="")
    pending_email_requested_at = models.DateTimeField(null=True, blank=True)
    # Kept by PostgreSQL itself from the row, so it can never be stale: username
    # (weight A), full name (B), the e-mail's local part split at dots (B), its
    # domain split at dots (C) and the whole address (C), tokenised without
    # stemming ('simple'), so prefix queries match names as typed.
    search_vector = models.GeneratedField(
        expression=(
            SearchVector(Coalesce("username", Value("")), weight="A", config="simple")
            + SearchVector(Coalesce("full_name", Value("")), weight="B", config="simple")
            + SearchVector(
                Replace(
                    Substr("email", 1, StrIndex("email", Value("@")) - 1),
                    Value("."),
                    Value(" "),
                ),
                weight="B",
                config="simple",
            )
            + SearchVector(
                Replace(Substr("email", StrIndex("email", Value("@")) + 1), Value("."), Value(" ")),
                weight="C",
                config="simple",
            )
            + SearchVector("email", weight="C", config="simple")
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    objects: ClassVar[UserManager] = UserManager()
    # True on a user rebuilt from the authentication cache (authentication.py): it
    # has no password hash, so it may only be saved with update_fields.
    from_auth_cache: bool = False

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        ordering = ["id"]
        constraints = [
            # Unique among live users only, so a deleted user's address can sign up again.
            models.UniqueConstraint(
                Lower("email"), condition=Q(is_deleted=False), name="accounts_user_live_email_uniq"
            ),
            models.UniqueConstraint(
                Lower("username"),
                condition=Q(is_deleted=False),
                name="accounts_user_live_username_uniq",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="accounts_user_created_idx"),
            GinIndex(fields=["search_vector"], name="accounts_user_search_gin"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.from_auth_cache and kwargs.get("update_fields") is None:
            raise ValueError(
                "This user was rebuilt from the authentication cache and lacks its password "
                "hash; save it with update_fields, or load it from the database."
            )
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.full_name or self.username

    def get_short_name(self) -> str:
        return self.username


class UserCount(models.Model):
    """How many users the schema holds per (is_deleted, is_active): kept by triggers on the
    user table (migration 0004), in the same transaction as every insert, delete,
    truncate and change of those two columns, however it is made (ORM, bulk, raw SQL).
    The users list reads its total here instead of counting every row."""

    is_deleted = models.BooleanField()
    is_active = models.BooleanField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_deleted", "is_active"], name="accounts_usercount_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} users (deleted={self.is_deleted}, active={self.is_active})"


class SessionQuerySet(models.QuerySet["Session"]):
    def live(self) -> SessionQuerySet:
        from django.utils import timezone

        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class Session(models.Model):
    """A signed-in device: one refresh-token family.

    Each login starts one. Refreshing rotates the family's token: only the
    current one (`refresh_jti`) is accepted; the one it replaced
    (`previous_refresh_jti`) is tolerated for a short grace period (two tabs
    refreshing at once) without issuing anything; any other token of the family
    is a replay and revokes the whole session.
    """

    class RevokeReason(models.TextChoices):
        LOGOUT = "logout"
        LOGOUT_ALL = "logout_all"
        PASSWORD_CHANGED = "password_changed"  # noqa: S105  (a reason, not a secret)
        PASSWORD_RESET = "password_reset"  # noqa: S105
        REFRESH_REUSED = "refresh_reused"
        USER_DEACTIVATED = "user_deactivated"
        USER_DELETED = "user_deleted"
        REVOKED_BY_USER = "revoked_by_user"
        REVOKED_BY_ADMIN = "revoked_by_admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the (user, revoked_at) index leads with it, and a second one
    # would only cost every sign-in another index insert.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sessions",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    refresh_jti = models.CharField(max_length=64)
    previous_refresh_jti = models.CharField(max_length=64, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, choices=RevokeReason.choices, blank=True)
    # How the user proved who they are (RFC 8176 values: "pwd", "otp", "hwk", "rc", "ext"),
    # and when they last did (sign-in, or the latest second factor): the access tokens'
    # `amr` and `auth_time`, kept across refreshes.
    amr = models.JSONField(default=list, blank=True)
    auth_time = models.DateTimeField(null=True, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-last_used_at"]
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="accounts_session_user_idx"),
            models.Index(fields=["expires_at"], name="accounts_session_expiry_idx"),
        ]

    def __str__(self) -> str:
        since = f" since {self.created_at:%Y-%m-%d %H:%M}" if self.created_at else ""
        return f"session of {self.user.email}{since}"

    @property
    def is_live(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and self.expires_at > timezone.now()


class PasswordResetToken(models.Model):
    """A single-use, expiring password reset: only the token's SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_resets"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    # The event that asked for it: a redelivered request does not mail a second link.
    request_event_id = models.UUIDField(unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="accounts_pwreset_expiry_idx")]

    def __str__(self) -> str:
        return f"password reset for user {self.user_id}"
