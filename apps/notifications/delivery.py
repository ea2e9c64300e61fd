"""Sending one delivery: claim it, call the provider, record the outcome.

No provider call is made inside a database transaction or under a row lock. A
worker first claims the delivery (`claimed_at`, committed), calls the provider,
and records the outcome (committed) before it calls the provider again
(`deliveries_send_now`; one statement records an outcome and claims the next).
Another worker, a re-run of the same task or `deliver` skips a delivery whose
claim is younger than NOTIFICATION_CLAIM_SECONDS; an older claim is a worker that
died in the call, and the delivery is sent again. So a worker process killed at
any moment causes at most one message to be sent twice: the one whose provider
call returned but whose outcome was not committed yet.

`delivery_send()` is what the `deliver` task runs for one delivery: it claims the
row, sends through the channel's provider and its circuit breaker, and records the
outcome. A transient error is retried with backoff until the attempts run out; a
permanent error fails at once; an open breaker leaves the delivery pending,
without spending an attempt, until the breaker lets calls through again.

Handing deliveries to `deliver` (on commit, again from the admin, the periodic
requeue) is `delivery_queue.py`.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.utils import timezone

from apps.core import metrics
from apps.notifications.breaker import BreakerOpen, breaker_call
from apps.notifications.channels.base import (
    NoAddress,
    OutboundMessage,
    PermanentProviderError,
    TransientProviderError,
)
from apps.notifications.channels.registry import provider_for
from apps.notifications.models import Delivery
from apps.notifications.rendering import outbound_message
from apps.notifications.sql import Step, delivery_step

logger = structlog.get_logger("apps.notifications")

# A task may run a little before the moment its delivery was scheduled for (clock skew).
EARLY_TOLERANCE = timedelta(seconds=2)
# How long a claim keeps other workers off a delivery (setting NOTIFICATION_CLAIM_SECONDS).
CLAIM_SECONDS = 300


def claim_lease() -> timedelta:
    seconds = int(getattr(settings, "NOTIFICATION_CLAIM_SECONDS", CLAIM_SECONDS))
    return timedelta(seconds=max(1, seconds))


@dataclass(frozen=True)
class DeliveryOutcome:
    # A Delivery.Status, or "busy" (another worker holds it), "missing", "not_due".
    status: str
    # Seconds until the task should run again (a retry, an open breaker, a claim
    # held by another worker until it expires).
    retry_in: float | None = None
    # The delivery's batch and recipient (delivery_send, for a batch's delivery).
    batch_id: uuid.UUID | None = None
    recipient_id: int | None = None


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter after the `attempts`-th failed attempt."""
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    delay = base * 2 ** max(attempts - 1, 0)
    jitter = random.uniform(0, base / 2)  # noqa: S311 (spreading retries, not security)
    return float(min(delay + jitter, settings.NOTIFICATION_RETRY_MAX_SECONDS))


def delivery_send(*, delivery_id: int) -> DeliveryOutcome:
    """Deliver one pending delivery once; a no-op when it is sent, failed, skipped, not
    due, or claimed by another worker: a duplicate task (a redelivered message after a
    worker crash, a retry from the admin) sends nothing while the claim holds.

    The outcome names the delivery's batch and recipient, if it belongs to a batch
    (its chunk may be complete once it is settled: batch_progress.batch_delivery_settled).
    """
    delivery = (
        Delivery.objects.select_related("notification__recipient").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return DeliveryOutcome("missing")
    if delivery.status != Delivery.Status.PENDING:
        outcome = DeliveryOutcome(delivery.status)
    else:
        outcome = deliveries_send_now(deliveries=[delivery])[delivery.pk]
    notification = delivery.notification
    if notification.batch_id is None:
        return outcome
    return replace(outcome, batch_id=notification.batch_id, recipient_id=notification.recipient_id)


def deliveries_send_now(
    *, deliveries: Sequence[Delivery], claimed: bool = False
) -> dict[int, DeliveryOutcome]:
    """Send these deliveries here and now, one after the other; their outcomes by id.

    Each delivery is claimed (committed) before its provider call, and its outcome
    is recorded (committed) before the next call: one statement records the last
    outcome and claims the next delivery, outside any transaction, so no lock is
    held while a provider answers. A delivery is sent only while pending, due and
    not claimed by another worker (a claim older than NOTIFICATION_CLAIM_SECONDS is
    a worker that died: the delivery is taken over); the breaker and the attempt
    rules are `delivery_send`'s, and a delivery left to retry (or waiting for the
    breaker, or for another worker's claim to expire) has its `retry_in`: the
    caller hands it to `deliver`. A channel's deliveries share one provider session
    (one SMTP connection). `claimed`: the rows were written claimed by this process
    (their `claimed_at` is the claim). The instances' notifications (and recipients)
    are used as they are, not read again: pass deliveries as written or loaded with them.
    """
    outcomes: dict[int, DeliveryOutcome] = {}
    by_channel: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_channel.setdefault(delivery.channel, []).append(delivery)
    lease = claim_lease()
    for channel, rows in by_channel.items():
        # Held by this process, the provider not called yet (a row whose outcome was
        # recorded already has no claim left: it goes through the claim, and is not sent).
        unsent = [d for d in rows if d.claimed_at is not None] if claimed else []
        try:
            with provider_for(channel).session() as send:
                attempted: Delivery | None = None  # called, outcome not recorded yet
                for delivery in rows:
                    now = timezone.now()
                    if delivery in unsent:
                        if attempted is not None:
                            _step(record=attempted, claim=None, now=now, lease=lease)
                        held = True
                    else:
                        step = _step(record=attempted, claim=delivery, now=now, lease=lease)
                        held = step.claimed
                    attempted = None
                    if not held:
                        outcomes[delivery.pk] = _not_claimed(step, now, lease)
                        continue
                    if delivery in unsent:
                        unsent.remove(delivery)
                    outcomes[delivery.pk] = _attempt_unsaved(delivery, now, send)
                    metrics.delivery_recorded(channel, outcomes[delivery.pk].status)
                    attempted = delivery
                if attempted is not None:
                    _step(record=attempted, claim=None, now=timezone.now(), lease=lease)
        except BaseException:
            _claims_release(unsent)
            raise
    return outcomes


def _step(*, record: Delivery | None, claim: Delivery | None, now: Any, lease: timedelta) -> Step:
    step = delivery_step(
        record=record,
        claim=claim,
        now=now,
        claimable_before=now - lease,
        due_before=now + EARLY_TOLERANCE,
    )
    if record is not None and not step.recorded:
        # Our claim expired and another worker took the delivery over (a provider call
        # longer than NOTIFICATION_CLAIM_SECONDS), or the row is gone: theirs stands.
        logger.warning("delivery_claim_lost", delivery_id=record.pk, channel=record.channel)
    return step


def _not_claimed(step: Step, now: Any, lease: timedelta) -> DeliveryOutcome:
    if step.status is None:
        return DeliveryOutcome("missing")
    if step.status != Delivery.Status.PENDING:
        return DeliveryOutcome(step.status)
    if step.next_attempt_at is not None and step.next_attempt_at > now + EARLY_TOLERANCE:
        return DeliveryOutcome("not_due")  # an earlier copy of the task is scheduled for it
    # Claimed by another worker: look again when its claim expires (sent by then, or
    # the worker died in the call and the delivery is taken over).
    expires = (step.claimed_at or now) + lease
    wait = max((expires - now).total_seconds(), 0.0) + random.uniform(0, 1)  # noqa: S311
    return DeliveryOutcome("busy", retry_in=wait)


def _claims_release(deliveries: Iterable[Delivery]) -> None:
    """Give back claims whose provider call never started (the session could not even
    begin): the deliveries go to `deliver` at once instead of waiting for the claim."""
    for delivery in deliveries:
        try:
            Delivery.objects.filter(pk=delivery.pk, claimed_at=delivery.claimed_at).update(
                claimed_at=None
            )
        except Exception:  # noqa: BLE001 (the database may be what failed: the claim expires)
            logger.warning("delivery_claim_not_released", delivery_id=delivery.pk)
            return
        delivery.claimed_at = None


def _attempt_unsaved(
    delivery: Delivery, now: Any, send: Callable[[OutboundMessage], str] | None = None
) -> DeliveryOutcome:
    """Send `delivery` once and set the outcome on it, unsaved."""
    log = logger.bind(delivery_id=delivery.pk, channel=delivery.channel)
    provider = provider_for(delivery.channel)
    delivery.provider = provider.name
    send = send or provider.send
    try:
        message = outbound_message(delivery.notification)
        message_id = breaker_call(provider.name, functools.partial(send, message))
    except BreakerOpen as exc:
        # Not an attempt: the provider was not called. Wait for the breaker, plus a
        # little jitter so the waiting deliveries do not all arrive at once.
        delivery.next_attempt_at = exc.retry_at
        delivery.last_error = str(exc)
        wait = max((exc.retry_at - now).total_seconds(), 0.0)
        wait += random.uniform(0, 1 + settings.NOTIFICATION_BREAKER_RESET_SECONDS / 10)  # noqa: S311
        log.info("delivery_waits_for_breaker", provider=provider.name, retry_in=wait)
        return DeliveryOutcome(Delivery.Status.PENDING, retry_in=wait)
    except NoAddress as exc:
        delivery.status, delivery.last_error = Delivery.Status.SKIPPED, str(exc)
        delivery.next_attempt_at = None
        return DeliveryOutcome(delivery.status)
    except PermanentProviderError as exc:
        delivery.attempts += 1
        delivery.status, delivery.last_error = Delivery.Status.FAILED, str(exc)[:4000]
        delivery.next_attempt_at = None
        log.warning("delivery_failed", provider=provider.name, error=str(exc))
        return DeliveryOutcome(delivery.status)
    except Exception as exc:  # noqa: BLE001 (transient, or a bug: retried, then failed, recorded)
        delivery.attempts += 1
        error = str(exc) if isinstance(exc, TransientProviderError) else repr(exc)
        delivery.last_error = error[:4000]
        if delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
            log.warning("delivery_failed", provider=provider.name, error=error, final=True)
            return DeliveryOutcome(delivery.status)
        wait = retry_delay(delivery.attempts)
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        log.info("delivery_retry", provider=provider.name, error=error, retry_in=wait)
        return DeliveryOutcome(Delivery.Status.PENDING, retry_in=wait)
    delivery.attempts += 1
    delivery.status, delivery.sent_at = Delivery.Status.SENT, timezone.now()
    delivery.provider_message_id = message_id[:255]
    delivery.last_error, delivery.next_attempt_at = "", None
    return DeliveryOutcome(delivery.status)
