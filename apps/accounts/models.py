from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


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


class UserManager(BaseUserManager["User"]):
    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def live(self) -> UserQuerySet:
        return self.get_queryset().live()

    def get_by_natural_key(self, username: str | None) -> User:
        # Sign-in is by e-mail, among live users only.
        return self.live().get(email=normalize_email(username or ""))

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
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="May sign in to this schema's Django admin."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

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
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self) -> str:
        return self.full_name or self.username

    def get_short_name(self) -> str:
        return self.username
