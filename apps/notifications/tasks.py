"""Notification jobs: deliver one delivery, send mail (one or in bulk), requeue lost deliveries."""

from __future__ import annotations

import functools
from typing import Any

import structlog
from celery import shared_task
from django.conf import settings
from django.core.mail import get_connection
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.core.tasks import tenant_task
from apps.notifications.breaker import BreakerOpen, breaker_call
from apps.notifications.channels.base import PermanentProviderError, TransientProviderError
from apps.notifications.channels.email import DjangoMailProvider, build_email, send_classified
from apps.notifications.models import Delivery

logger = structlog.get_logger("apps.notifications.tasks")

EMAIL_BREAKER = DjangoMailProvider.name
SETTLED = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED)


@tenant_task(name="notifications.deliver", bind=True, acks_late=True)
def deliver(self: Any, delivery_id: int) -> str:
    """Send one delivery; reschedules itself while it must wait (backoff, open breaker).

    The attempts are counted on the row, not by Celery, so the limit holds
    across redelivered messages; waiting for a breaker spends none. A delivery
    claimed by another worker is looked at again when that claim expires. Settling
    a batch's delivery may complete its chunk.
    """
    from apps.notifications.batches import batch_delivery_settled
    from apps.notifications.services import delivery_send

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


def _email_retry(task: Any, exc: Exception) -> None:
    if isinstance(exc, BreakerOpen):
        wait = max((exc.retry_at - timezone.now()).total_seconds(), 1.0)
        raise task.retry(countdown=wait, max_retries=None, exc=exc)
    if task.request.retries + 1 >= settings.NOTIFICATION_MAX_ATTEMPTS:
        raise exc
    from apps.notifications.services import retry_delay

    raise task.retry(countdown=retry_delay(task.request.retries + 1), max_retries=None, exc=exc)


@shared_task(name="notifications.send_email", bind=True, acks_late=True)
def send_email(self: Any, to: str, subject: str, body: str, html: str | None = None) -> str:
    """Mail one address (text, and HTML if given); returns the Message-ID.

    Transient errors retry with backoff (NOTIFICATION_MAX_ATTEMPTS tries in all);
    a refused recipient fails the task at once.
    """
    mail = build_email(to=[to], subject=subject, text=body, html=html)
    try:
        return breaker_call(EMAIL_BREAKER, lambda: send_classified(mail))
    except (TransientProviderError, BreakerOpen) as exc:
        _email_retry(self, exc)
        raise  # unreachable: _email_retry raises


# How long a bulk send remembers the addresses it handled: far longer than a message
# can wait to be redelivered after its worker died.
BULK_PROGRESS_SECONDS = 86_400


class BulkProgress:
    """The addresses a `send_bulk_email` task has handled (sent, refused, or handed to
    `send_email`), in a Redis set named after its task id, each added before the next
    address is sent. Redelivered after its worker was killed, the task skips them: only
    the address whose send returned before it was added can go twice. Without a task id
    (called directly) nothing is kept; with Redis away, the send goes on unrecorded.
    """

    def __init__(self, task_id: str | None) -> None:
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        self.key = f"{prefix}:notifications:bulk_email:{task_id}" if task_id else None

    def handled(self) -> set[str]:
        if self.key is None:
            return set()
        try:
            members = get_redis_connection("default").smembers(self.key)
        except RedisError:
            logger.warning("bulk_email_progress_unavailable")
            return set()
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def add(self, address: str) -> None:
        if self.key is None:
            return
        try:
            pipe = get_redis_connection("default").pipeline(transaction=False)
            pipe.sadd(self.key, address).expire(self.key, BULK_PROGRESS_SECONDS).execute()
        except RedisError:
            logger.warning("bulk_email_progress_not_recorded")
            self.key = None  # once is enough: the rest of this run goes unrecorded


@shared_task(name="notifications.send_bulk_email", bind=True, acks_late=True)
def send_bulk_email(
    self: Any,
    recipients: list[str],
    subject: str,
    body: str,
    html: str | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Mail each recipient their own copy, a connection per chunk; returns the counts.

    One recipient's failure never stops the rest: a refused address is counted
    as failed; a transient failure (or an open breaker) hands that address to
    its own `send_email` task, which retries it with backoff (counted as retried).
    Run again (its worker was killed), it skips what it had handled (`BulkProgress`),
    counted as handled_before.
    """
    size = chunk_size or settings.NOTIFICATION_CHUNK_SIZE
    progress = BulkProgress(self.request.id)
    before = progress.handled()
    addresses = list(dict.fromkeys(a.strip() for a in recipients if a and a.strip()))
    counts: dict[str, Any] = {
        "total": len(addresses), "sent": 0, "failed": 0, "retried": 0, "handled_before": 0,
    }  # fmt: skip
    failed: list[str] = []
    for start in range(0, len(addresses), size):
        connection = get_connection(fail_silently=False)
        try:
            for address in addresses[start : start + size]:
                if address in before:
                    counts["handled_before"] += 1
                    continue
                mail = build_email(to=[address], subject=subject, text=body, html=html)
                try:
                    breaker_call(
                        EMAIL_BREAKER, functools.partial(send_classified, mail, connection)
                    )
                except PermanentProviderError as exc:
                    counts["failed"] += 1
                    failed.append(address)
                    logger.warning("bulk_email_refused", error=str(exc))
                except (TransientProviderError, BreakerOpen) as exc:
                    counts["retried"] += 1
                    countdown = 0.0
                    if isinstance(exc, BreakerOpen):
                        countdown = max((exc.retry_at - timezone.now()).total_seconds(), 1.0)
                    send_email.apply_async(args=(address, subject, body, html), countdown=countdown)
                    # The connection may be broken now: the next message opens a new one.
                    connection.close()
                else:
                    counts["sent"] += 1
                progress.add(address)
        finally:
            connection.close()
    counts["failed_recipients"] = failed[:100]
    logger.info("bulk_email_done", **{k: v for k, v in counts.items() if k != "failed_recipients"})
    return counts


@tenant_task(name="notifications.requeue_stale", ignore_result=True)
def requeue_stale_deliveries() -> int:
    """Periodic, per tenant: enqueue pending deliveries whose task was lost."""
    from apps.notifications.services import deliveries_requeue_stale

    return deliveries_requeue_stale()


# The batch fan-out's tasks live beside their service; importing them here registers
# them wherever Celery autodiscovers `tasks` (the worker must know them by name).
from apps.notifications import batches  # noqa: E402, F401
