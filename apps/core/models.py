from __future__ import annotations

import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class OutboxEvent(models.Model):
    """A domain event, written in the same transaction as the change it describes.

    Lives in every schema (public for platform events, each tenant's for its
    own), so an event is never visible outside the tenant it belongs to.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=100, db_index=True)
    version = models.CharField(max_length=10, default="1.0")
    source = models.CharField(max_length=100)
    occurred_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    metadata = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(
                fields=["occurred_at"],
                condition=Q(dispatched_at__isnull=True),
                name="core_outbox_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"

    def envelope(self) -> dict[str, Any]:
        """The seed's event envelope, as consumers receive it."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "timestamp": self.occurred_at.isoformat(),
            "version": self.version,
            "source": self.source,
            "data": self.data,
            "metadata": self.metadata,
        }
