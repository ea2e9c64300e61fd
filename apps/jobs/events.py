"""Domain events through a transactional outbox.

`event_record` writes the event in the caller's transaction; once that
transaction commits, the event's Django signal is sent (one signal per event
type, plus `any_event`) and the row is marked dispatched. If the transaction
rolls back, the event never existed. If a receiver fails (say the broker is
down while it enqueues a task), the row stays pending and `outbox_relay`
sends it again later, so consumers must be idempotent by `event_id`:
`consume_once` inserts (consumer, event_id) first, in the consumer's own
transaction; a second delivery of the event finds the row and does nothing.

    @event_receiver("user.created")
    def on_user_created(sender, event, **kwargs):
        send_welcome_task.delay(event["event_id"], event["data"]["user_id"])
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from django.db import connection, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.core.context import current_request_id
from apps.core.tenancy import current_schema
from apps.core.tracing import trace_context_capture, trace_context_continued
from apps.jobs.models import ConsumedEvent, OutboxEvent

logger = structlog.get_logger("apps.jobs.events")

T = TypeVar("T")

# Sent for every event, after its type's own signal: for audit trails, webhooks, metrics.
any_event = Signal()
_signals: dict[str, Signal] = {}


def event_signal(event_type: str) -> Signal:
    signal = _signals.get(event_type)
    if signal is None:
        signal = _signals.setdefault(event_type, Signal())
    return signal


def event_receiver(
    event_type: str, **connect_kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Connects the decorated function to the signal of one event type."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        event_signal(event_type).connect(func, **connect_kwargs)
        return func

    return decorator


def event_record(
    *,
    type: str,
    source: str,
    data: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    version: str = "1.0",
) -> OutboxEvent:
    schema = current_schema()
    event = OutboxEvent.objects.create(
        event_type=type,
        source=source,
        version=version,
        data=dict(data),
        metadata={"tenant": schema, "request_id": current_request_id(), **(metadata or {})},
        trace_context=trace_context_capture(),
    )
    transaction.on_commit(functools.partial(_dispatch_after_commit, event, schema))
    return event


def _dispatch_after_commit(event: OutboxEvent, schema: str) -> None:
    if current_schema() == schema:
        event_dispatch(event)
        return
    with schema_context(schema):
        event_dispatch(event)


def event_dispatch(event: OutboxEvent) -> bool:
    """Send the event's signals; mark it dispatched only if every receiver succeeded.

    The receivers run in the trace the event was recorded in (tasks they enqueue carry
    it on), also when the relay sends the event long after."""
    with trace_context_continued(
        event.trace_context,
        f"outbox.dispatch {event.event_type}",
        {"event.id": str(event.event_id), "event.type": event.event_type},
    ):
        failures = _signals_send(event)
    pending = OutboxEvent.objects.filter(pk=event.pk, dispatched_at__isnull=True)
    if failures:
        pending.update(attempts=F("attempts") + 1, last_error="\n".join(failures)[:4000])
        return False
    pending.update(attempts=F("attempts") + 1, dispatched_at=timezone.now(), last_error="")
    return True


def _signals_send(event: OutboxEvent) -> list[str]:
    envelope = event.envelope()
    failures: list[str] = []
    for signal in (event_signal(event.event_type), any_event):
        for receiver, result in signal.send_robust(sender=OutboxEvent, event=envelope):
            if isinstance(result, Exception):
                name = getattr(receiver, "__qualname__", repr(receiver))
                failures.append(f"{name}: {type(result).__name__}: {result}")
                logger.error(
                    "event_receiver_failed",
                    event_id=envelope["event_id"],
                    event_type=event.event_type,
                    receiver=name,
                    exc_info=result,
                )
    return failures


def outbox_relay(*, min_age: timedelta = timedelta(seconds=30), batch_size: int = 200) -> int:
    """Dispatch committed events that were never dispatched; returns how many went out.

    Only events older than `min_age` are taken, so an event whose on-commit
    dispatch is still under way is not sent twice. Rows are locked with SKIP
    LOCKED, so relays running side by side never take the same event.
    """
    cutoff = timezone.now() - min_age
    sent = 0
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True, occurred_at__lte=cutoff)
            .order_by("occurred_at", "id")[:batch_size]
        )
        for event in events:
            sent += event_dispatch(event)
    return sent


# ------------------------------------------------------------------ consumers


def consume_once(*, consumer: str, event_id: str, handle: Callable[[], T]) -> T | None:
    """Run `handle` unless `consumer` already handled `event_id`; None when it had.

    The mark and the work share one transaction: if the work fails, the mark is
    rolled back with it and a redelivery does the work. Two deliveries running
    at once serialize on the unique index; the second finds the first's mark.
    The mark is one `INSERT ... ON CONFLICT DO NOTHING` (no savepoint needed to
    survive a repeat).
    """
    with transaction.atomic():
        if not _mark_consumed(consumer, event_id):
            logger.info("event_already_consumed", consumer=consumer, event_id=event_id)
            return None
        return handle()


def _mark_consumed(consumer: str, event_id: str) -> bool:
    """Insert the (consumer, event_id) mark; False if it was there (committed) already."""
    table = connection.ops.quote_name(ConsumedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer, event_id, consumed_at) VALUES (%s, %s, %s) "  # noqa: S608 (a model's table name)
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING id",
            [consumer, uuid.UUID(str(event_id)), timezone.now()],
        )
        return cursor.fetchone() is not None


def events_prune(*, older_than_days: int) -> dict[str, int]:
    """Delete dispatched outbox events and consumed-event marks older than the retention.

    Only dispatched events go: a pending one is still the relay's to send. A mark
    outlives any redelivery of its event (the relay resends only undispatched events).
    """
    horizon = timezone.now() - timedelta(days=older_than_days)
    events, _ = OutboxEvent.objects.filter(dispatched_at__lt=horizon).delete()
    marks, _ = ConsumedEvent.objects.filter(consumed_at__lt=horizon).delete()
    return {"outbox_events": events, "consumed_events": marks}
