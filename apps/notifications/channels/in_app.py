"""The in-app inbox: the notification row is the delivery, so there is nothing to send."""

from __future__ import annotations

from apps.notifications.channels.base import OutboundMessage, Provider


class InboxProvider(Provider):
    name = "inbox"

    def send(self, message: OutboundMessage) -> str:
        return str(message.notification_id)
