"""Reads of notifications, preferences, devices and batches, narrowed to the actor.

A user sees only their own notifications and devices: anyone else's id is a
404, never a 403, so ids cannot be probed. Lists cost a fixed number of
queries at any size (deliveries are prefetched).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch, QuerySet

from apps.core.errors import NotFoundError
from apps.notifications.models import (
    Channel,
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
    Preference,
)
from apps.notifications.types import NOTIFICATION_TYPES

if TYPE_CHECKING:
    from apps.accounts.models import User

NOTIFICATION_NOT_FOUND = "Notification not found"
DEVICE_NOT_FOUND = "Device not found"
BATCH_NOT_FOUND = "Batch not found"

# ------------------------------------------------------------------ inbox


def notification_list(
    *, user: User, unread: bool | None = None, type: str | None = None
) -> QuerySet[Notification]:
    queryset = Notification.objects.filter(recipient=user).prefetch_related(
        Prefetch(
            "deliveries",
            queryset=Delivery.objects.only("id", "notification_id", "channel", "status", "sent_at"),
        )
    )
    if unread is not None:
        queryset = queryset.filter(read_at__isnull=unread)
    if type:
        queryset = queryset.filter(type=type)
    return queryset.order_by("-created_at", "-id")


def notification_get(*, user: User, notification_id: int) -> Notification:
    found = notification_list(user=user).filter(pk=notification_id).first()
    if found is None:
        raise NotFoundError(NOTIFICATION_NOT_FOUND)
    return found


def unread_count(*, user: User) -> int:
    # Served by the partial index on unread rows.
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


# ------------------------------------------------------------------ preferences


@dataclass(frozen=True)
class PreferenceCell:
    type: str
    channel: str
    enabled: bool
    locked: bool


def preference_matrix(*, user: User) -> list[PreferenceCell]:
    """Every known type times every channel: the stored choice, else on (the default).
    Security types are on and locked whatever is stored."""
    stored = {
        (type_, channel): enabled
        for type_, channel, enabled in Preference.objects.filter(user=user).values_list(
            "type", "channel", "enabled"
        )
    }
    return [
        PreferenceCell(
            type=kind.key,
            channel=channel,
            enabled=True if kind.security else stored.get((kind.key, channel), True),
            locked=kind.security,
        )
        for kind in NOTIFICATION_TYPES.values()
        for channel in Channel.values
    ]


def preferences_view(*, user: User) -> dict[str, Any]:
    return {
        "types": [
            {"type": t.key, "description": t.description, "security": t.security}
            for t in NOTIFICATION_TYPES.values()
        ],
        "channels": list(Channel.values),
        "preferences": preference_matrix(user=user),
    }


# ------------------------------------------------------------------ devices


def device_list(*, user: User) -> QuerySet[DeviceSubscription]:
    return DeviceSubscription.objects.filter(user=user).order_by("-created_at", "-id")


def device_get(*, user: User, device_id: int) -> DeviceSubscription:
    found = device_list(user=user).filter(pk=device_id).first()
    if found is None:
        raise NotFoundError(DEVICE_NOT_FOUND)
    return found


# ------------------------------------------------------------------ batches


def batch_get(*, batch_id: uuid.UUID, created_by: User | None = None) -> NotificationBatch:
    """The batch with `notifications_created` annotated; `created_by` narrows to one
    sender's batches (a sender whose grant is scoped sees only their own)."""
    queryset = NotificationBatch.objects.annotate(notifications_created=Count("notifications"))
    if created_by is not None:
        queryset = queryset.filter(created_by=created_by)
    found = queryset.filter(pk=batch_id).first()
    if found is None:
        raise NotFoundError(BATCH_NOT_FOUND)
    return found


def _zero_counts() -> dict[str, int]:
    counts = dict.fromkeys(Delivery.Status.values, 0)
    counts["total"] = 0
    return counts


def batch_progress(*, batch: NotificationBatch) -> dict[str, Any]:
    """The batch as the API shows it: counts of deliveries per channel and status
    (one aggregate query)."""
    rows = (
        Delivery.objects.filter(notification__batch_id=batch.pk)
        .values_list("channel", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    per_channel: dict[str, dict[str, int]] = {}
    totals = _zero_counts()
    for channel, status, n in rows:
        counts = per_channel.setdefault(channel, _zero_counts())
        counts[status] = counts.get(status, 0) + n
        counts["total"] += n
        totals[status] = totals.get(status, 0) + n
        totals["total"] += n
    audience = batch.audience or {}
    progress = audience.get("progress") or {}
    return {
        "id": batch.pk,
        "type": batch.type,
        "title": batch.title,
        "body": batch.body,
        "data": batch.data,
        "channels": list(batch.channels),
        "audience": {
            key: list(audience.get(key, [])) for key in ("users", "roles", "organizations")
        },
        "status": batch.status,
        "created_by_id": batch.created_by_id,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
        "total_recipients": batch.total_recipients,
        "notifications_created": getattr(batch, "notifications_created", 0),
        "failed_recipients": int(progress.get("failed", 0)),
        "chunks": {
            "total": len(progress.get("bounds", [])),
            "done": len(progress.get("chunks_done", [])),
        },
        "deliveries": per_channel,
        "delivery_totals": totals,
    }
