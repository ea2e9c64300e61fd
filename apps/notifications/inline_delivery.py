"""The fast path: a worker sends the e-mail of the notifications it wrote itself, right
after they commit, over one connection, instead of a `deliver` task per delivery.

Only in a worker (a consumer's task, a batch's chunk), and only for the channels of
NOTIFICATION_INLINE_CHANNELS (default: e-mail, fast and local to the worker; empty:
always `deliver`). The send is `delivery.deliveries_send_now`, the same claim,
provider call and record as `deliver`'s, after the commit: no provider call is made
inside a transaction. Whatever it cannot settle (a retry, an open breaker, a claim held
elsewhere, an error) goes to `deliver`. Every other pending delivery, and every one
written in a web process, goes to `deliver` once committed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import structlog
from celery import current_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.tenancy import current_schema
from apps.notifications.delivery import deliveries_send_now
from apps.notifications.delivery_queue import deliveries_enqueue, deliveries_enqueue_on_commit
from apps.notifications.models import Channel, Delivery, NotificationBatch

logger = structlog.get_logger("apps.notifications")

# Channels whose deliveries a worker sends itself, right after committing them, in the
# task that wrote them (setting NOTIFICATION_INLINE_CHANNELS; empty: always a task).
INLINE_CHANNELS: tuple[str, ...] = (Channel.EMAIL,)


def inline_channels() -> set[str]:
    return set(getattr(settings, "NOTIFICATION_INLINE_CHANNELS", INLINE_CHANNELS))


def _in_worker() -> bool:
    """Whether a Celery worker is running a task here (not a web request, not an eager call)."""
    return bool(current_task) and not current_task.request.is_eager


def inline_now(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """The pending deliveries this process sends itself once they are committed: in a
    worker, those of NOTIFICATION_INLINE_CHANNELS (e-mail: fast, and local to the worker)."""
    inline = inline_channels() if _in_worker() else set()
    return [d for d in deliveries if d.status == Delivery.Status.PENDING and d.channel in inline]


def deliveries_send_after_commit(deliveries: list[Delivery], *, claimed: bool = False) -> None:
    """Once the deliveries are committed, have the pending ones sent.

    In a worker, the inline channels' deliveries (`inline_now`) are sent right
    here, after the commit, over one connection (`deliveries_send_now`) instead of
    a `deliver` task each: a welcome, a batch's chunk. The rest, and every delivery
    written in a web process, go to `deliver`. `claimed`: the inline ones were
    written claimed by this process (`notification_send()`).
    """
    now = inline_now(deliveries)
    inline = {id(d) for d in now}
    deliveries_enqueue_on_commit(
        [d.pk for d in deliveries if d.status == Delivery.Status.PENDING and id(d) not in inline]
    )
    if now:
        schema = current_schema()
        transaction.on_commit(
            functools.partial(_send_inline, now, schema=schema, claimed=claimed), robust=True
        )


def _send_inline(deliveries: list[Delivery], *, schema: str, claimed: bool = False) -> None:
    # After the commit: the rows exist, pending. Whatever this cannot settle goes to
    # `deliver` (retries, an open breaker, a claim held elsewhere, an error here); should
    # the worker die now, a re-run of the task, or deliveries_requeue_stale, sends the rest.
    try:
        outcomes = deliveries_send_now(deliveries=deliveries, claimed=claimed)
    except Exception:
        logger.exception("inline_delivery_failed", deliveries=len(deliveries))
        deliveries_enqueue([d.pk for d in deliveries], schema=schema)
        return
    for delivery_id, outcome in outcomes.items():
        if outcome.retry_in is not None:
            deliveries_enqueue([delivery_id], schema=schema, countdown=outcome.retry_in)


def batch_deliveries_resume(*, batch: NotificationBatch, first: int, last: int) -> None:
    """Send what an earlier run of a batch's chunk (recipients `first` to `last`) left
    pending: in a worker, its inline channels' deliveries, one by one as
    `deliveries_send_now` does. A delivery claimed by another worker (or by one that
    died in its provider call), or waiting for a retry, goes to a `deliver` task for
    the moment it can be sent. Other channels' deliveries have their own tasks.
    """
    inline = inline_channels() if _in_worker() else set()
    if not inline:
        return
    left = list(
        Delivery.objects.filter(
            notification__batch_id=batch.pk,
            notification__recipient_id__gte=first,
            notification__recipient_id__lte=last,
            status=Delivery.Status.PENDING,
            channel__in=inline,
        )
        .select_related("notification__recipient")
        .order_by("pk")
    )
    if not left:
        return
    outcomes = deliveries_send_now(deliveries=left)
    now = timezone.now()
    for delivery in left:
        outcome = outcomes[delivery.pk]
        wait = outcome.retry_in
        if outcome.status == "not_due" and delivery.next_attempt_at is not None:
            # Its retry was to be handed to `deliver` by the run that died.
            wait = max((delivery.next_attempt_at - now).total_seconds(), 0.0)
        if wait is not None:
            deliveries_enqueue_on_commit([delivery.pk], countdown=wait)
