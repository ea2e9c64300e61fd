"""The `deliver` task and what hands deliveries to it.

`deliveries_enqueue_on_commit` hands pending deliveries to `deliver` once the
transaction that wrote them commits; `deliveries_retry` (the admin,
`manage.py deliveries_retry`) and `deliveries_requeue_stale` (a periodic job) hand
them again. The task sits here, below the services that write deliveries
(notify.py, inline_delivery.py), because they hand their deliveries to it; what it
runs (`delivery.delivery_send`, `batch_progress.batch_delivery_settled`) sits below it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.core.tenancy import current_schema
from apps.jobs.bases import tenant_task
from apps.notifications.batch_progress import batch_delivery_settled
from apps.notifications.delivery import claim_lease, delivery_send
from apps.notifications.models import Delivery

SETTLED = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED)


@tenant_task(name="notifications.deliver", bind=True, acks_late=True)
def deliver(self: Any, delivery_id: int) -> str:
    """Send one delivery; reschedules itself while it must wait (backoff, open breaker).

    The attempts are counted on the row, not by Celery, so the limit holds
    across redelivered messages; waiting for a breaker spends none. A delivery
    claimed by another worker is looked at again when that claim expires. Settling
    a batch's delivery may complete its chunk.
    """
    outcome = delivery_send(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    if (
        outcome.batch_id is not None
        and outcome.recipient_id is not None
        and outcome.status in SETTLED
    ):
        batch_delivery_settled(batch_id=outcome.batch_id, recipient_id=outcome.recipient_id)
    return outcome.status


def deliveries_enqueue_on_commit(delivery_ids: list[int], countdown: float | None = None) -> None:
    """A `deliver` task for each of these deliveries, once the current transaction commits."""
    if not delivery_ids:
        return
    schema = current_schema()
    # robust: a broker outage must not fail the caller after its commit; the pending
    # deliveries are picked up again by deliveries_requeue_stale.
    transaction.on_commit(
        functools.partial(deliveries_enqueue, delivery_ids, schema=schema, countdown=countdown),
        robust=True,
    )


def deliveries_enqueue(
    delivery_ids: Iterable[int], *, schema: str, countdown: float | None = None
) -> None:
    """A `deliver` task for each of these deliveries, now (the rows are committed)."""
    for delivery_id in delivery_ids:
        deliver.apply_async(
            args=[delivery_id], countdown=countdown, headers={"_schema_name": schema}
        )


def deliveries_retry(queryset: QuerySet[Delivery] | None = None) -> int:
    """Send failed deliveries again (from the admin or `manage.py`); returns how many.

    Their attempts start over; the last error stays until the next attempt.
    Without a queryset: every failed delivery of the current tenant.
    """
    queryset = Delivery.objects.all() if queryset is None else queryset
    with transaction.atomic():
        # Re-selected by id: the caller's queryset may join or order in ways FOR UPDATE refuses.
        ids = list(
            Delivery.objects.filter(pk__in=queryset.values("pk"), status=Delivery.Status.FAILED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING,
            attempts=0,
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        deliveries_enqueue_on_commit(ids)
    return len(ids)


def deliveries_requeue_stale(*, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Enqueue again pending deliveries nobody is sending; returns how many.

    Unclaimed ones whose task was lost (the broker was down at commit), and claimed
    ones whose claim is older than NOTIFICATION_CLAIM_SECONDS (a worker died in the
    provider call); a delivery claimed more recently is being sent and is left alone.
    A copy of a task still alive is harmless: see delivery_send.
    """
    now = timezone.now()
    cutoff = now - older_than
    lost = Q(claimed_at__isnull=True) & (
        Q(next_attempt_at__isnull=True, created_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff)
    )
    ids = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .filter(lost | Q(claimed_at__lt=now - claim_lease()))
        .values_list("pk", flat=True)[:5000]
    )
    with transaction.atomic():
        deliveries_enqueue_on_commit(ids)
    return len(ids)
