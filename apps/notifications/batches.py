"""Sending one notification to many, the worker's side: the fan-out and the chunks.

`send.batch_create` (the API's service) records the batch; the worker resolves the
audience and fans out:

    batch_fan_out_task(batch)      resolve the audience (audience.py: live, active users,
                                   deduplicated, inside the sender's scope), plan chunks of
                                   NOTIFICATION_BATCH_CHUNK users by id range
    batch_chunk_task(batch, i)     notification_send() each user of chunk i, and send their e-mail

(the tasks are in tasks.py; they call `batch_fan_out` and `batch_chunk_send` here).

Every step may run twice (acks late: a worker killed mid-task gets its message
again) with the effect of once: the plan is written once, under a row lock; a
chunk's notifications carry the batch id as their source event, and
`notification_send()` writes one notification per (recipient, type, source event); each
delivery is claimed before its provider call and recorded before the next one
(delivery.deliveries_send_now), so a chunk run again sends what the killed run
had not, and at most the one message that was in flight goes out twice. When a
chunk, and the batch, is done is batch_progress.py's.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.notifications.audience import audience_queryset
from apps.notifications.batch_progress import batch_chunk_written, progress_of
from apps.notifications.inline_delivery import batch_deliveries_resume
from apps.notifications.models import NotificationBatch
from apps.notifications.notify import notification_send, notifications_send

logger = structlog.get_logger("apps.notifications.batches")

DEFAULT_CHUNK = 500
# Errors a retry can fix: the database went away or was restarted.
TRANSIENT = (OperationalError, InterfaceError)


def chunk_size() -> int:
    return max(1, int(getattr(settings, "NOTIFICATION_BATCH_CHUNK", DEFAULT_CHUNK)))


def batch_fan_out(*, batch_id: uuid.UUID) -> list[int]:
    """Plan the batch's chunks (once) and return the chunks still to send (the caller,
    `batch_fan_out_task`, hands them to `batch_chunk_task` once this has committed)."""

    with transaction.atomic():
        batch = NotificationBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.status in (
            NotificationBatch.Status.DONE,
            NotificationBatch.Status.FAILED,
        ):
            return []
        if batch.status == NotificationBatch.Status.QUEUED:
            ids: list[int] = list(
                audience_queryset(batch.audience).order_by("pk").values_list("pk", flat=True)
            )
            size = chunk_size()
            bounds = [[ids[i], ids[min(i + size, len(ids)) - 1]] for i in range(0, len(ids), size)]
            batch.audience = {
                **batch.audience,
                "progress": {"bounds": bounds, "chunks_done": [], "failed": 0},
            }
            batch.total_recipients = len(ids)
            batch.status = NotificationBatch.Status.RUNNING
            fields = ["audience", "total_recipients", "status"]
            if not ids:
                batch.status = NotificationBatch.Status.DONE
                batch.finished_at = timezone.now()
                fields.append("finished_at")
            batch.save(update_fields=fields)
        # Running already: this message came again (the worker died after planning);
        # send what is not counted yet, which a chunk's own dedup makes safe.
        progress = progress_of(batch)
        done = set(progress.get("chunks_done", []))
        return [i for i in range(len(progress.get("bounds", []))) if i not in done]


def batch_chunk_send(*, batch_id: uuid.UUID, index: int) -> int:
    """Notify every user of chunk `index`; returns how many notifications it wrote.

    One `notifications_send` call (a fixed number of queries for the chunk, users notified
    before for this batch skipped). Should it fail for a reason a retry cannot fix,
    the chunk goes again one `notification_send` at a time, so one recipient's problem does
    not hold back the others. If an earlier run had notified some users (it died
    before the chunk was done), what it left unsent is sent now.
    """

    batch = NotificationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return 0
    progress = progress_of(batch)
    if index in progress.get("chunks_done", []) or index >= len(progress.get("bounds", [])):
        return 0  # counted already: a message delivered twice
    first, last = progress["bounds"][index]
    recipients = list(
        audience_queryset(batch.audience).filter(pk__gte=first, pk__lte=last).order_by("pk")
    )
    message: dict[str, Any] = {
        "type": batch.type,
        "title": batch.title,
        "body": batch.body,
        "data": batch.data,
        "channels": list(batch.channels) or None,
        "batch": batch,
        "source_event_id": batch.pk,
    }
    failed = 0
    try:
        result = notifications_send(
            user_ids=[u.pk for u in recipients], chunk_size=max(1, len(recipients)), **message
        )
        written, repeated = result.created, result.duplicates
    except TRANSIENT:
        raise  # the whole chunk is retried; what was written stays written once
    except Exception:
        logger.exception("batch_chunk_failed", batch_id=str(batch.pk), index=index)
        written = repeated = 0
        for user in recipients:
            try:
                if notification_send(user=user, **message) is None:
                    repeated += 1
                else:
                    written += 1
            except TRANSIENT:
                raise
            except Exception:
                logger.exception("batch_recipient_failed", batch_id=str(batch.pk), user_id=user.pk)
                failed += 1
    if repeated:
        # An earlier run notified these users and may have died sending to them.
        batch_deliveries_resume(batch=batch, first=first, last=last)
    batch_chunk_written(batch_id=batch_id, index=index, failed=failed)
    return written
