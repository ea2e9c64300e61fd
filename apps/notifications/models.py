"""Notifications: one per recipient (the in-app inbox row), one delivery per channel.

`notification_send()` (notify.py) decides the channels from the user's preferences,
writes the notification and its deliveries in one transaction, and the worker
sends each delivery (the `deliver` task, delivery_queue.py), recording attempts,
errors and the provider's message id. A delivery whose provider is down waits
(its breaker is open); it is not dropped.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"


class NotificationBatch(models.Model):
    """A send to many (users, roles, organization subtrees), fanned out in chunks by the worker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    # {"users": [ids], "roles": [ids], "organizations": [ids]} as asked for.
    audience = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total_recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "notification batches"

    def __str__(self) -> str:
        return f"{self.type} ({self.status})"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    type = models.CharField(max_length=64)  # e.g. "welcome", "security.password_changed"
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Security notices reach every channel the user can receive, whatever the preferences.
    is_security = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        NotificationBatch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    # The domain event (or batch) this answers: the same event never notifies twice.
    source_event_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notif_recipient_idx"),
            models.Index(
                fields=["recipient"], condition=Q(read_at__isnull=True), name="notif_unread_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "type", "source_event_id"],
                condition=Q(source_event_id__isnull=False),
                name="notif_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} to {self.recipient.email}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the allowed attempts (retry from the admin)
        SKIPPED = "skipped"  # nothing to send to (no phone, no device) or turned off

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider = models.CharField(max_length=64, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set (and committed) by the worker about to call the provider, cleared with the
    # outcome: while it is younger than NOTIFICATION_CLAIM_SECONDS nobody else sends
    # this delivery; an older one is a worker that died in the call (delivery.py).
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_per_channel")
        ]
        indexes = [
            models.Index(fields=["status", "channel"], name="delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"


class Preference(models.Model):
    """Whether `user` wants notifications of `type` on `channel` (absent: the default, on)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    type = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["type", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["user", "type", "channel"], name="preference_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.user.email} {self.type}/{self.channel}: {'on' if self.enabled else 'off'}"


class DeviceSubscription(models.Model):
    """Where push notifications reach a user's device (a Web Push subscription or FCM token)."""

    class Kind(models.TextChoices):
        WEBPUSH = "webpush", "Web Push"
        FCM = "fcm", "Firebase Cloud Messaging"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEBPUSH)
    # The Web Push endpoint URL, or the FCM registration token.
    endpoint = models.TextField()
    # Web Push: {"p256dh": ..., "auth": ...}; empty for FCM.
    keys = models.JSONField(default=dict, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "endpoint"], name="device_endpoint_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user.email}"
