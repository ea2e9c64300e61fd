"""Sending notifications: `notify` writes them, `delivery_send` delivers one channel's copy.

`notify()` renders the title and body (unless given), decides the channels
(asked for, minus those the user turned off; security notices ignore the
preferences), and writes the notification with one delivery per channel in one
transaction. In-app is delivered by that write; a channel with nothing to send
to (no phone number, no push device) is skipped; the rest are sent by the
worker (`tasks.deliver`), enqueued once the transaction commits. In a worker
(a consumer's task, a batch's chunk), the e-mail is sent by that task itself
right after the commit, over one connection (`_send_after_commit`).

Sending once: no provider call is made inside a database transaction or under a
row lock. A worker first claims the delivery (`claimed_at`, committed), calls the
provider, and records the outcome (committed) before it calls the provider again
(`deliveries_send_now`; one statement records an outcome and claims the next).
Another worker, a re-run of the same task or `deliver` skips a delivery whose
claim is younger than NOTIFICATION_CLAIM_SECONDS; an older claim is a worker that
died in the call, and the delivery is sent again. So a worker process killed
at any moment causes at most one message to be sent twice: the one whose provider
call returned but whose outcome was not committed yet.

`delivery_send()` is what the worker runs for one delivery: it claims the row,
sends through the channel's provider and its circuit breaker, and records the
outcome. A transient error is retried with backoff until the attempts run out;
a permanent error fails at once; an open breaker leaves the delivery pending,
without spending an attempt, until the breaker lets calls through again.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.template import Context, Engine
from django.template.loader import select_template
from django.utils import timezone

from apps.core.tenancy import current_schema
from apps.notifications.breaker import BreakerOpen, breaker_call
from apps.notifications.channels.base import (
    NoAddress,
    OutboundMessage,
    PermanentProviderError,
    TransientProviderError,
    provider_for,
)
from apps.notifications.models import (
    Channel,
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
)
from apps.notifications.sql import Step, delivery_step, disabled_channels, notification_insert_once
from apps.notifications.types import is_security_type

if TYPE_CHECKING:
    from apps.accounts.models import User

logger = structlog.get_logger("apps.notifications")

ALL_CHANNELS: tuple[str, ...] = tuple(Channel.values)
TITLE_MAX = Notification._meta.get_field("title").max_length or 200
ONCE_PER_EVENT = "notif_once_per_event"

SKIP_PREFERENCE = "turned off in the user's preferences"
SKIP_NO_EMAIL = "the user has no e-mail address"
SKIP_NO_PHONE = "the user has no phone number"
SKIP_NO_DEVICE = "the user has no push device"

# A task may run a little before the moment its delivery was scheduled for (clock skew).
EARLY_TOLERANCE = timedelta(seconds=2)
# Channels whose deliveries a worker sends itself, right after committing them, in the
# task that wrote them (setting NOTIFICATION_INLINE_CHANNELS; empty: always a task).
INLINE_CHANNELS: tuple[str, ...] = (Channel.EMAIL,)
# How long a claim keeps other workers off a delivery (setting NOTIFICATION_CLAIM_SECONDS).
CLAIM_SECONDS = 300


def inline_channels() -> set[str]:
    return set(getattr(settings, "NOTIFICATION_INLINE_CHANNELS", INLINE_CHANNELS))


def claim_lease() -> timedelta:
    seconds = int(getattr(settings, "NOTIFICATION_CLAIM_SECONDS", CLAIM_SECONDS))
    return timedelta(seconds=max(1, seconds))


# ------------------------------------------------------------------ templates


@functools.cache
def _text_engine() -> Engine:
    # Plain text (subjects, e-mail text, SMS, push) must not be HTML-escaped:
    # the same template folders, without autoescape.
    options: dict[str, Any] = settings.TEMPLATES[0]
    return Engine(dirs=list(options["DIRS"]), app_dirs=bool(options["APP_DIRS"]), autoescape=False)


def _names(type: str, name: str) -> list[str]:
    return [f"notifications/{type}/{name}", f"notifications/default/{name}"]


def render_text(type: str, name: str, context: dict[str, Any]) -> str:
    """`templates/notifications/<type>/<name>`, else the default's, rendered unescaped."""
    template = _text_engine().select_template(_names(type, name))
    return template.render(Context(context, autoescape=False)).strip()


def render_html(type: str, name: str, context: dict[str, Any]) -> str:
    return select_template(_names(type, name)).render(context)


def _current_tenant() -> Any:
    tenant = getattr(connection, "tenant", None)
    if tenant is not None and hasattr(tenant, "name"):
        return tenant
    from apps.tenants.models import Tenant

    return Tenant.objects.filter(schema_name=current_schema()).first()


def _context(*, recipient: User, data: dict[str, Any], tenant: Any, **extra: Any) -> dict[str, Any]:
    return {"recipient": recipient, "data": data, "tenant": tenant, **extra}


def _title_body(
    *,
    type: str,
    recipient: User,
    data: dict[str, Any],
    tenant: Any,
    title: str | None,
    body: str | None,
) -> tuple[str, str]:
    context = _context(recipient=recipient, data=data, tenant=tenant)
    if title is None:
        title = " ".join(render_text(type, "subject.txt", context).split())
    if body is None:
        body = render_text(type, "body.txt", context)
    return title[:TITLE_MAX], body


def outbound_message(notification: Notification) -> OutboundMessage:
    """The notification for every channel (templates keyed on its type, rendered as used)."""
    recipient = notification.recipient
    data = dict(notification.data or {})
    context = _context(
        recipient=recipient,
        data=data,
        tenant=_current_tenant(),
        title=notification.title,
        body=notification.body,
        notification=notification,
    )

    def render(name: str) -> str:
        if name.endswith(".html"):
            return render_html(notification.type, name, context)
        return render_text(notification.type, name, context)

    return OutboundMessage(
        notification_id=notification.pk,
        type=notification.type,
        recipient=recipient,
        subject=notification.title,
        text=notification.body,
        push_title=notification.title,
        data=data,
        render=render,
    )


# ------------------------------------------------------------------ notify


def _requested(channels: Iterable[str] | None) -> list[str]:
    if channels is None:
        return list(ALL_CHANNELS)
    asked = set(channels)
    unknown = asked - set(ALL_CHANNELS)
    if unknown:
        raise ValueError(f"unknown channels: {sorted(unknown)}")
    return [c for c in ALL_CHANNELS if c in asked]


@dataclass(frozen=True)
class _Audience:
    """What decides each recipient's channels, loaded for many users in three queries."""

    disabled: set[tuple[int, str]]  # (user_id, channel) turned off for this type
    with_device: set[int]

    @classmethod
    def load(
        cls, *, user_ids: Sequence[int], type: str, is_security: bool, channels: Sequence[str]
    ) -> _Audience:
        # Only what the requested channels need: no device query without push.
        disabled: set[tuple[int, str]] = set()
        if not is_security and channels:
            disabled = disabled_channels(user_ids, type)
        with_device: set[int] = set()
        if Channel.PUSH in channels:
            with_device = set(
                DeviceSubscription.objects.filter(
                    user_id__in=user_ids, kind=DeviceSubscription.Kind.WEBPUSH
                ).values_list("user_id", flat=True)
            )
        return cls(disabled=disabled, with_device=with_device)

    def deliveries(
        self, *, notification: Notification, user: User, channels: list[str]
    ) -> list[Delivery]:
        now = timezone.now()
        rows = []
        for channel in channels:
            delivery = Delivery(notification=notification, channel=channel)
            skip = self._skip_reason(user, channel)
            if skip:
                delivery.status, delivery.last_error = Delivery.Status.SKIPPED, skip
            elif channel == Channel.IN_APP:
                # The inbox row is the delivery.
                delivery.status, delivery.sent_at, delivery.attempts = Delivery.Status.SENT, now, 1
                delivery.provider, delivery.provider_message_id = "inbox", str(notification.pk)
            else:
                delivery.provider = provider_for(channel).name
            rows.append(delivery)
        return rows

    def _skip_reason(self, user: User, channel: str) -> str:
        if (user.pk, channel) in self.disabled:
            return SKIP_PREFERENCE
        if channel == Channel.EMAIL and not user.email:
            return SKIP_NO_EMAIL
        if channel == Channel.SMS and not user.phone_number:
            return SKIP_NO_PHONE
        if channel == Channel.PUSH and user.pk not in self.with_device:
            return SKIP_NO_DEVICE
        return ""


def _is_duplicate(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == ONCE_PER_EVENT


def notify(
    *,
    user: User,
    type: str,
    title: str | None = None,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    channels: Iterable[str] | None = None,
    is_security: bool = False,
    source_event_id: uuid.UUID | str | None = None,
    batch: NotificationBatch | None = None,
) -> Notification | None:
    """Notify one user; returns None if this (user, type, source_event_id) was notified before.

    `channels`: any of in_app, email, sms, push (default: all). A type registered
    as security (types.py) is a security notice whatever `is_security` says.
    With a `batch` and no `source_event_id`, the batch's id is the source, so a
    batch re-run never notifies a user twice.
    """
    is_security = is_security or is_security_type(type)
    requested = _requested(channels)
    if source_event_id is None and batch is not None:
        source_event_id = batch.pk
    event_id = uuid.UUID(str(source_event_id)) if source_event_id is not None else None
    data = dict(data or {})
    title, body = _title_body(
        type=type, recipient=user, data=data, tenant=_current_tenant(), title=title, body=body
    )
    # No savepoint of its own inside a caller's transaction (a consumer's): an error here
    # fails the caller's whole transaction anyway.
    with transaction.atomic(savepoint=False):
        notification = Notification(
            recipient=user,
            type=type,
            title=title,
            body=body,
            data=data,
            is_security=is_security,
            batch=batch,
            source_event_id=event_id,
        )
        if not notification_insert_once(notification):
            return None  # a repeat: the once-per-event index answered, nothing was written
        audience = _Audience.load(
            user_ids=[user.pk], type=type, is_security=is_security, channels=requested
        )
        deliveries = audience.deliveries(notification=notification, user=user, channels=requested)
        # What this worker sends right after the commit goes in claimed: a re-run or the
        # stale requeue leaves it alone while the claim is young, and the send needs no
        # statement of its own before it.
        now = timezone.now()
        for delivery in _inline_now(deliveries):
            delivery.claimed_at = now
        deliveries = Delivery.objects.bulk_create(deliveries)
        _send_after_commit(deliveries, claimed=True)
    return notification


@dataclass
class NotifyManyResult:
    created: int = 0
    duplicates: int = 0  # already notified for this source (a re-run)
    missing: int = 0  # ids that are no live, active user
    notification_ids: list[int] = field(default_factory=list)


def notify_many(
    *,
    user_ids: Sequence[int],
    type: str,
    title: str | None = None,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    channels: Iterable[str] | None = None,
    is_security: bool = False,
    source_event_id: uuid.UUID | str | None = None,
    batch: NotificationBatch | None = None,
    chunk_size: int | None = None,
) -> NotifyManyResult:
    """`notify` for many users, a chunk per transaction, a fixed number of queries per chunk.

    Idempotent like `notify`: with a `source_event_id` (or a `batch`, whose id is
    then the source), users notified before are counted as duplicates, so a
    chunk retried after a worker crash writes nothing twice. Only live, active
    users are notified. Safe to call from a task with a chunk of a big audience.
    """
    from apps.accounts.models import User

    is_security = is_security or is_security_type(type)
    requested = _requested(channels)
    if source_event_id is None and batch is not None:
        source_event_id = batch.pk
    event_id = uuid.UUID(str(source_event_id)) if source_event_id is not None else None
    data = dict(data or {})
    tenant = _current_tenant()
    size = chunk_size or settings.NOTIFICATION_CHUNK_SIZE
    result = NotifyManyResult()
    ids = list(dict.fromkeys(user_ids))
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        users = list(User.objects.live().filter(pk__in=chunk, is_active=True).order_by("pk"))
        result.missing += len(chunk) - len(users)
        done: set[int] = set()
        if event_id is not None:
            done = set(
                Notification.objects.filter(
                    recipient_id__in=chunk, type=type, source_event_id=event_id
                ).values_list("recipient_id", flat=True)
            )
        todo = [u for u in users if u.pk not in done]
        result.duplicates += len(users) - len(todo)
        if not todo:
            continue
        try:
            created = _notify_chunk(
                users=todo,
                type=type,
                title=title,
                body=body,
                data=data,
                tenant=tenant,
                channels=requested,
                is_security=is_security,
                event_id=event_id,
                batch=batch,
            )
        except IntegrityError as exc:
            if not _is_duplicate(exc):
                raise
            # Another run took some of these users meanwhile: one by one, each race-safe.
            created = []
            for user in todo:
                one = notify(
                    user=user,
                    type=type,
                    title=title,
                    body=body,
                    data=data,
                    channels=requested,
                    is_security=is_security,
                    source_event_id=event_id,
                    batch=batch,
                )
                if one is None:
                    result.duplicates += 1
                else:
                    created.append(one)
        result.created += len(created)
        result.notification_ids.extend(n.pk for n in created)
    return result


@transaction.atomic
def _notify_chunk(
    *,
    users: list[User],
    type: str,
    title: str | None,
    body: str | None,
    data: dict[str, Any],
    tenant: Any,
    channels: list[str],
    is_security: bool,
    event_id: uuid.UUID | None,
    batch: NotificationBatch | None,
) -> list[Notification]:
    notifications = []
    for user in users:
        user_title, user_body = _title_body(
            type=type, recipient=user, data=data, tenant=tenant, title=title, body=body
        )
        notifications.append(
            Notification(
                recipient=user,
                type=type,
                title=user_title,
                body=user_body,
                data=data,
                is_security=is_security,
                batch=batch,
                source_event_id=event_id,
            )
        )
    notifications = Notification.objects.bulk_create(notifications)
    audience = _Audience.load(
        user_ids=[u.pk for u in users], type=type, is_security=is_security, channels=channels
    )
    rows: list[Delivery] = []
    for notification, user in zip(notifications, users, strict=True):
        rows.extend(audience.deliveries(notification=notification, user=user, channels=channels))
    deliveries = Delivery.objects.bulk_create(rows)
    _send_after_commit(deliveries)
    return notifications


def _enqueue_after_commit(delivery_ids: list[int], countdown: float | None = None) -> None:
    if not delivery_ids:
        return
    schema = current_schema()
    # robust: a broker outage must not fail the caller after its commit; the pending
    # deliveries are picked up again by deliveries_requeue_stale.
    transaction.on_commit(
        functools.partial(_enqueue, delivery_ids, schema=schema, countdown=countdown), robust=True
    )


def _enqueue(delivery_ids: Iterable[int], *, schema: str, countdown: float | None = None) -> None:
    from apps.notifications.tasks import deliver

    for delivery_id in delivery_ids:
        deliver.apply_async(
            args=[delivery_id], countdown=countdown, headers={"_schema_name": schema}
        )


def _in_worker() -> bool:
    """Whether a Celery worker is running a task here (not a web request, not an eager call)."""
    from celery import current_task

    return bool(current_task) and not current_task.request.is_eager


def _inline_now(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """The pending deliveries this process sends itself once they are committed: in a
    worker, those of NOTIFICATION_INLINE_CHANNELS (e-mail: fast, and local to the worker)."""
    inline = inline_channels() if _in_worker() else set()
    return [d for d in deliveries if d.status == Delivery.Status.PENDING and d.channel in inline]


def _send_after_commit(deliveries: list[Delivery], *, claimed: bool = False) -> None:
    """Once the deliveries are committed, have the pending ones sent.

    In a worker, the inline channels' deliveries (`_inline_now`) are sent right
    here, after the commit, over one connection (`deliveries_send_now`) instead of
    a `deliver` task each: a welcome, a batch's chunk. The rest, and every delivery
    written in a web process, go to `deliver`. `claimed`: the inline ones were
    written claimed by this process (`notify()`).
    """
    now = _inline_now(deliveries)
    inline = {id(d) for d in now}
    _enqueue_after_commit(
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
        _enqueue([d.pk for d in deliveries], schema=schema)
        return
    for delivery_id, outcome in outcomes.items():
        if outcome.retry_in is not None:
            _enqueue([delivery_id], schema=schema, countdown=outcome.retry_in)


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
            _enqueue_after_commit([delivery.pk], countdown=wait)


# ------------------------------------------------------------------ delivering


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
    (its chunk may be complete once it is settled: batches.batch_delivery_settled).
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
        _enqueue_after_commit(ids)
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
        _enqueue_after_commit(ids)
    return len(ids)
