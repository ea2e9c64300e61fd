"""Notifications, deliveries and devices for tests (call inside `tenant_context`)."""

from __future__ import annotations

from typing import Any

from apps.accounts.models import User
from apps.notifications.models import Delivery, DeviceSubscription
from apps.notifications.notify import notification_send


def make_delivery(user: User, channel: str = "email", **fields: Any) -> Delivery:
    """The pending delivery on `channel` of a new announcement to `user`, made by the service
    (`fields` go to it: title, body, ...)."""
    fields.setdefault("title", "Hello")
    notification = notification_send(user=user, type="announcement", channels=[channel], **fields)
    assert notification is not None
    return notification.deliveries.get(channel=channel)


def make_device(
    user: User,
    endpoint: str = "https://push.example.com/device",
    keys: dict[str, str] | None = None,
    **fields: Any,
) -> DeviceSubscription:
    """A push subscription of `user` (Web Push unless `kind` says otherwise)."""
    return DeviceSubscription.objects.create(
        user=user, endpoint=endpoint, keys={} if keys is None else keys, **fields
    )
