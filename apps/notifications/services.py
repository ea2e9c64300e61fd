"""Sending notifications: `notify` writes them, `delivery_send` delivers one channel's copy.

`notify()` renders the title and body (unless given), decides the channels
(asked for, minus those the user turned off; security notices ignore the
preferences), and writes the notification with one delivery per channel in one
transaction. In-app is delivered by that write; a channel with nothing to send
to (no phone number, no push device) is skipped; the rest are sent by the
worker (`tasks.deliver`), enqueued once the transaction commits. In a worker
(a consumer's task), `notify()` sends its e-mail itself, before writing the
delivery with the outcome (`_send_before_insert`); a batch's chunk is mailed
right after its commit, over one connection (`_send_after_commit`).

`delivery_send()` is what the worker runs for one delivery: it locks the row,
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
from dataclasses import dataclass, field
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
from apps.notifications.sql import (
    ATTEMPT_FIELDS,
    disabled_channels,
    notification_insert_once,
    outcomes_write,
)
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
# Deliveries sent together are locked and recorded this many per transaction
# (setting NOTIFICATION_SEND_GROUP).
SEND_GROUP = 50


def inline_channels() -> set[str]:
    return set(getattr(settings, "NOTIFICATION_INLINE_CHANNELS", INLINE_CHANNELS))


def send_group() -> int:
    return max(1, int(getattr(settings, "NOTIFICATION_SEND_GROUP", SEND_GROUP)))


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
        retry_in = _send_before_insert(deliveries)
        deliveries = Delivery.objects.bulk_create(deliveries)
        retrying = {id(delivery) for delivery, _ in retry_in}
        _send_after_commit([d for d in deliveries if id(d) not in retrying])
        for delivery, wait in retry_in:
            _enqueue_after_commit([delivery.pk], countdown=wait)
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


def _send_before_insert(deliveries: list[Delivery]) -> list[tuple[Delivery, float]]:
    """In a worker, send the inline channels' pending deliveries of one notification now,
    before their rows are written: the rows go in with the outcome (sent, failed, or
    pending with an attempt counted). Returns those left to retry, with their wait.

    This is `notify()`'s path: the message goes out inside the transaction that writes
    the notification, and a commit that then fails makes the task run again, as a
    worker lost between the send and the commit would; the unwritten rows need no
    lock (nobody else sees them), and no second transaction records the outcome.
    EMAIL_TIMEOUT bounds how long the transaction waits for the server. An unexpected
    error leaves the deliveries not yet attempted pending, for the after-commit path
    (`_send_after_commit`: sent there, or handed to `deliver`).
    """
    if not _in_worker():
        return []
    inline = inline_channels()
    now = [d for d in deliveries if d.status == Delivery.Status.PENDING and d.channel in inline]
    retry_in: list[tuple[Delivery, float]] = []
    by_channel: dict[str, list[Delivery]] = {}
    for delivery in now:
        by_channel.setdefault(delivery.channel, []).append(delivery)
    for channel, rows in by_channel.items():
        attempted: list[Delivery] = []
        try:
            with provider_for(channel).session() as send:
                for delivery in rows:
                    outcome = _attempt_unsaved(delivery, timezone.now(), send)
                    attempted.append(delivery)
                    if outcome.retry_in is not None:
                        retry_in.append((delivery, outcome.retry_in))
        except Exception:
            logger.exception("inline_delivery_failed", channel=channel, deliveries=len(rows))
            for delivery in rows[len(attempted) :]:
                _reset_unsaved(delivery)  # what it may have set before the error
    return retry_in


def _reset_unsaved(delivery: Delivery) -> None:
    delivery.status, delivery.attempts, delivery.last_error = Delivery.Status.PENDING, 0, ""
    delivery.next_attempt_at = delivery.sent_at = None
    delivery.provider_message_id = ""


def _send_after_commit(deliveries: list[Delivery]) -> None:
    """Once the deliveries are committed, have the pending ones sent.

    In a worker, the deliveries of NOTIFICATION_INLINE_CHANNELS (e-mail: fast, and
    local to the worker) are sent right here, after the commit, over one connection
    (`deliveries_send_now`) instead of a `deliver` task each: a batch's chunk, or
    what `notify()` could not send before writing it; the rest, and every delivery
    written in a web process, go to `deliver`.
    """
    pending = [d for d in deliveries if d.status == Delivery.Status.PENDING]
    if not pending:
        return
    inline = inline_channels() if _in_worker() else set()
    now = [d for d in pending if d.channel in inline]
    _enqueue_after_commit([d.pk for d in pending if d.channel not in inline])
    if now:
        schema = current_schema()
        transaction.on_commit(functools.partial(_send_inline, now, schema=schema), robust=True)


def _send_inline(deliveries: list[Delivery], *, schema: str) -> None:
    # After the commit: the rows exist, pending. Whatever this cannot settle goes to
    # `deliver` (retries, an open breaker, an error here); should the worker die now,
    # the rows stay pending for deliveries_requeue_stale.
    try:
        outcomes = deliveries_send_now(deliveries=deliveries)
    except Exception:
        logger.exception("inline_delivery_failed", deliveries=len(deliveries))
        _enqueue([d.pk for d in deliveries], schema=schema)
        return
    for delivery_id, outcome in outcomes.items():
        if outcome.retry_in is not None:
            _enqueue([delivery_id], schema=schema, countdown=outcome.retry_in)


# ------------------------------------------------------------------ delivering


@dataclass(frozen=True)
class DeliveryOutcome:
    # A Delivery.Status, or "busy" (another worker holds it), "missing", "not_due".
    status: str
    # Seconds until the task should run again (a retry or an open breaker).
    retry_in: float | None = None


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter after the `attempts`-th failed attempt."""
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    delay = base * 2 ** max(attempts - 1, 0)
    jitter = random.uniform(0, base / 2)  # noqa: S311 (spreading retries, not security)
    return float(min(delay + jitter, settings.NOTIFICATION_RETRY_MAX_SECONDS))


def delivery_send(*, delivery_id: int) -> DeliveryOutcome:
    """Deliver one pending delivery once; a no-op when it is sent, failed, skipped or taken.

    The row stays locked while the provider is called, so a duplicate task (a
    redelivered message after a worker crash, a retry from the admin) waits for
    nothing and sends nothing: it skips the locked row, or finds it sent.
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("notification__recipient")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            exists = Delivery.objects.filter(pk=delivery_id).exists()
            return DeliveryOutcome("busy" if exists else "missing")
        return _attempt_if_due(delivery)


def deliveries_send_now(*, deliveries: Sequence[Delivery]) -> dict[int, DeliveryOutcome]:
    """Send these deliveries here and now, as `delivery_send` would each; their outcomes by id.

    What `delivery_send` guarantees holds for each: its row is locked (skipped if
    another worker holds it) and sent only while pending and due; the breaker
    and the attempt rules are the same, and a delivery left to retry (or waiting
    for the breaker) has its `retry_in`: the caller hands it to `deliver`. The
    deliveries of one channel share one provider session (one SMTP connection),
    and are locked `send_group()` at a time, each group in a
    transaction. The instances' notifications (and recipients) are used as they
    are, not read again: pass deliveries as written or loaded with them.
    """
    outcomes: dict[int, DeliveryOutcome] = {}
    by_channel: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_channel.setdefault(delivery.channel, []).append(delivery)
    size = send_group()
    for channel, rows in by_channel.items():
        provider = provider_for(channel)
        with provider.session() as send:
            for start in range(0, len(rows), size):
                group = {d.pk: d for d in rows[start : start + size]}
                with transaction.atomic():
                    locked = (
                        Delivery.objects.select_for_update(skip_locked=True)
                        .filter(pk__in=list(group))
                        .order_by("pk")
                    )
                    attempted: list[Delivery] = []
                    for row in locked:
                        row.notification = group[row.pk].notification
                        due = row.status == Delivery.Status.PENDING
                        outcomes[row.pk] = _attempt_if_due(row, send=send, save=False)
                        if due and outcomes[row.pk].status != "not_due":
                            attempted.append(row)
                    # The group's outcomes in one statement, in the transaction that
                    # holds their locks (committed together, as the updates one by one were).
                    outcomes_write(attempted)
        for delivery_id in {d.pk for d in rows} - outcomes.keys():
            outcomes[delivery_id] = DeliveryOutcome("busy")  # gone, or another worker has it
    return outcomes


def _attempt_if_due(
    delivery: Delivery, send: Callable[[OutboundMessage], str] | None = None, save: bool = True
) -> DeliveryOutcome:
    """`delivery` is locked: attempt it if it is still pending and due (and save the
    outcome, unless the caller saves it)."""
    if delivery.status != Delivery.Status.PENDING:
        return DeliveryOutcome(delivery.status)
    now = timezone.now()
    if delivery.next_attempt_at and delivery.next_attempt_at > now + EARLY_TOLERANCE:
        return DeliveryOutcome("not_due")  # an earlier copy of the task is scheduled for it
    if not save:
        return _attempt_unsaved(delivery, now, send)
    return _attempt(delivery, now, send)


def _attempt(
    delivery: Delivery, now: Any, send: Callable[[OutboundMessage], str] | None = None
) -> DeliveryOutcome:
    outcome = _attempt_unsaved(delivery, now, send)
    delivery.save(update_fields=ATTEMPT_FIELDS)
    return outcome


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
    """Enqueue again pending deliveries whose task was lost (the broker was down at commit);
    returns how many. A copy of a task still alive is harmless: see delivery_send."""
    cutoff = timezone.now() - older_than
    ids = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING)
        .filter(
            Q(next_attempt_at__isnull=True, created_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff)
        )
        .values_list("pk", flat=True)[:5000]
    )
    with transaction.atomic():
        _enqueue_after_commit(ids)
    return len(ids)
