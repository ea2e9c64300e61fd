"""Notifying a user: write the notification and one delivery per channel.

`notification_send()` renders the title and body (unless given), decides the channels
(asked for, minus those the user turned off; security notices ignore the
preferences), and writes the notification with one delivery per channel in one
transaction. In-app is delivered by that write; a channel with nothing to send
to (no phone number, no push device) is skipped; the rest are sent once the
transaction commits, never inside it: by the `deliver` task (`delivery_queue.py`),
or, for e-mail written in a worker, by that worker right after the commit
(`inline_delivery.py`). `notifications_send()` does the same for many users, a chunk per
transaction.

A notification is written once per (recipient, type, source event): a repeat
returns None (`sql.notification_insert_once`, the once-per-event index).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.notifications.channels.registry import provider_for
from apps.notifications.inline_delivery import deliveries_send_after_commit, inline_now
from apps.notifications.models import (
    Channel,
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
)
from apps.notifications.rendering import current_tenant, title_body
from apps.notifications.sql import disabled_channels, notification_insert_once
from apps.notifications.types import is_security_type

ALL_CHANNELS: tuple[str, ...] = tuple(Channel.values)
ONCE_PER_EVENT = "notif_once_per_event"

SKIP_PREFERENCE = "turned off in the user's preferences"
SKIP_NO_EMAIL = "the user has no e-mail address"
SKIP_NO_PHONE = "the user has no phone number"
SKIP_NO_DEVICE = "the user has no push device"


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


def notification_send(
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
    title, body = title_body(
        type=type, recipient=user, data=data, tenant=current_tenant(), title=title, body=body
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
        for delivery in inline_now(deliveries):
            delivery.claimed_at = now
        deliveries = Delivery.objects.bulk_create(deliveries)
        deliveries_send_after_commit(deliveries, claimed=True)
    return notification


@dataclass
class NotifyManyResult:
    created: int = 0
    duplicates: int = 0  # already notified for this source (a re-run)
    missing: int = 0  # ids that are no live, active user
    notification_ids: list[int] = field(default_factory=list)


def notifications_send(
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
    """`notification_send` for many users, a chunk per transaction, a fixed number of
    queries per chunk.

    Idempotent like `notification_send`: with a `source_event_id` (or a `batch`, whose
    id is then the source), users notified before are counted as duplicates, so a
    chunk retried after a worker crash writes nothing twice. Only live, active
    users are notified. Safe to call from a task with a chunk of a big audience.
    """
    is_security = is_security or is_security_type(type)
    requested = _requested(channels)
    if source_event_id is None and batch is not None:
        source_event_id = batch.pk
    event_id = uuid.UUID(str(source_event_id)) if source_event_id is not None else None
    data = dict(data or {})
    tenant = current_tenant()
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
                one = notification_send(
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
        user_title, user_body = title_body(
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
    deliveries_send_after_commit(deliveries)
    return notifications
