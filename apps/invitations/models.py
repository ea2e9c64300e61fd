"""Invitations into a tenant, and the links that verify a self-signed-up address.

Neither keeps a usable token: a link's token is made by the worker that mails it and
only its SHA-256 is stored (`token_hash`); until then, and once the link is void, the
hash is empty and no token opens the row.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        """Neither accepted nor revoked (pending, or expired and still resendable)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def with_status(self, status: str, *, now: datetime | None = None) -> InvitationQuerySet:
        now = now or timezone.now()
        if status == InvitationStatus.ACCEPTED:
            return self.filter(accepted_at__isnull=False)
        if status == InvitationStatus.REVOKED:
            return self.filter(revoked_at__isnull=False)
        if status == InvitationStatus.EXPIRED:
            return self.open().filter(expires_at__lte=now)
        return self.open().filter(expires_at__gt=now)

    def for_email(self, email: str) -> InvitationQuerySet:
        return self.alias(email_key=Lower("email")).filter(email_key=email.strip().lower())


class Invitation(models.Model):
    """`email` is asked to join the tenant, with `roles` (granted everywhere) and a
    membership of `organization`, on the authority of `invited_by` (checked again at
    acceptance: what they can no longer grant is not granted)."""

    email = models.EmailField(max_length=254)
    roles = models.ManyToManyField("rbac.Role", blank=True, related_name="+")
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The mail the worker is to send (a new one on every resend): a redelivered or
    # superseded task finds another value here and sends nothing.
    send_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open invitation per address: a second one is a resend.
            models.UniqueConstraint(
                Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitations_open_email_uniq",
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="invitations_created_idx")]

    def __str__(self) -> str:
        return f"invitation of {self.email}"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING


class EmailVerification(models.Model):
    """A link that verifies a self-signed-up user's address (single use, expiring)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The password hash of the sign-up that asked for this link: set when it is followed.
    password_hash = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="invitations_verify_expiry_idx")]

    def __str__(self) -> str:
        return f"address verification of user {self.user_id}"
