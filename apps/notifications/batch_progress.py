"""A batch's progress: which chunks are written and done, and the batch's status.

The plan and progress live in the batch's `audience` under "progress":
{"bounds": [[first_id, last_id], ...], "chunks_written": [i, ...],
"chunks_done": [i, ...], "failed": n}.

A chunk is written once its notifications are; it is done once, besides, none of
its deliveries is pending: checked when the chunk's task ends (`batch_chunk_written`)
and when `deliver` settles one of its deliveries (`batch_delivery_settled`: a retry,
another channel, a delivery a dead worker had claimed), whichever comes last. The
batch goes queued -> running -> done when its last chunk is done (failed if the
fan-out itself gave up). Every change is made under the batch's row lock.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.notifications.models import Delivery, NotificationBatch


def progress_of(batch: NotificationBatch) -> dict[str, Any]:
    return dict((batch.audience or {}).get("progress") or {})


@transaction.atomic
def batch_chunk_written(*, batch_id: uuid.UUID, index: int, failed: int) -> None:
    """Chunk `index` has its notifications (`failed`: recipients that could not be
    notified); it is done too if none of its deliveries is pending."""
    batch = NotificationBatch.objects.select_for_update().get(pk=batch_id)
    progress = progress_of(batch)
    written = set(progress.get("chunks_written", []))
    if index not in written:
        written.add(index)
        progress["chunks_written"] = sorted(written)
        progress["failed"] = int(progress.get("failed", 0)) + failed
    _chunk_done_if_settled(batch, progress, index)


def batch_delivery_settled(*, batch_id: uuid.UUID, recipient_id: int) -> None:
    """A delivery of the batch to `recipient_id` was settled (sent, failed, skipped) by
    `deliver`: its chunk is done if it is written and nothing of it is pending any more."""
    with transaction.atomic():
        batch = NotificationBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return
        progress = progress_of(batch)
        index = next(
            (
                i
                for i, (first, last) in enumerate(progress.get("bounds", []))
                if first <= recipient_id <= last
            ),
            None,
        )
        if index is None or index in progress.get("chunks_done", []):
            return
        if index not in progress.get("chunks_written", []):
            return  # not written yet: the chunk's task checks when it ends
        _chunk_done_if_settled(batch, progress, index)


def _chunk_done_if_settled(batch: NotificationBatch, progress: dict[str, Any], index: int) -> None:
    """Under the batch's row lock: count chunk `index` done if none of its deliveries is
    pending, and the batch done with its last chunk; saves the progress."""
    done = set(progress.get("chunks_done", []))
    fields = ["audience"]
    if index not in done:
        first, last = progress["bounds"][index]
        pending = Delivery.objects.filter(
            notification__batch_id=batch.pk,
            notification__recipient_id__gte=first,
            notification__recipient_id__lte=last,
            status=Delivery.Status.PENDING,
        ).exists()
        if not pending:
            done.add(index)
            progress["chunks_done"] = sorted(done)
        if (
            len(done) >= len(progress.get("bounds", []))
            and batch.status != NotificationBatch.Status.DONE
        ):
            batch.status = NotificationBatch.Status.DONE
            batch.finished_at = timezone.now()
            fields += ["status", "finished_at"]
    batch.audience = {**batch.audience, "progress": progress}
    batch.save(update_fields=fields)


def batch_mark_failed(*, batch_id: uuid.UUID) -> None:
    NotificationBatch.objects.filter(pk=batch_id).exclude(
        status=NotificationBatch.Status.DONE
    ).update(status=NotificationBatch.Status.FAILED, finished_at=timezone.now())
