"""What background work keeps: the outbox of domain events, the marks of consumed events,
and the tasks that failed for good.

The tables kept their names from when these models lived in apps.core (`db_table`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


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
    # The W3C trace context (traceparent, tracestate) the event was recorded in, continued
    # when it is dispatched, by the relay too (apps/core/tracing.py). Empty: not traced.
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "core_outboxevent"
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
        """The event envelope, as consumers receive it."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "timestamp": self.occurred_at.isoformat(),
            "version": self.version,
            "source": self.source,
            "data": self.data,
            "metadata": self.metadata,
        }


class ConsumedEvent(models.Model):
    """That `consumer` has handled `event_id`: written first, in the consumer's own transaction.

    A redelivered event (relay, broker redelivery, a retried task) finds the row
    and does nothing; a consumer that failed rolled its row back with its work.
    Lives in the schema the event belongs to.
    """

    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField()
    consumed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "core_consumedevent"
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="core_consumed_once")
        ]
        indexes = [models.Index(fields=["consumed_at"], name="core_consumed_at_idx")]

    def __str__(self) -> str:
        return f"{self.consumer} {self.event_id}"


class JobFailure(models.Model):
    """A task that failed for good: a permanent error, or a transient one past its tries.

    Always written in the public schema (operators see every tenant's failures in
    one place); `tenant_schema` says where the task ran and where a retry is sent.
    """

    task_name = models.CharField(max_length=200, db_index=True)
    task_id = models.CharField(max_length=64, db_index=True)
    tenant_schema = models.CharField(max_length=63, blank=True, db_index=True)
    # Secrets replaced by "[redacted]"; such a row cannot be retried from here.
    args = models.JSONField(encoder=DjangoJSONEncoder, default=list)
    kwargs = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    is_redacted = models.BooleanField(default=False)
    exception_type = models.CharField(max_length=200)
    exception_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    retried_at = models.DateTimeField(null=True, blank=True)
    retry_task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "core_jobfailure"
        ordering = ["-last_failed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["task_id"], name="core_jobfailure_task_once")
        ]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.tenant_schema or 'public'}] {self.exception_type}"
