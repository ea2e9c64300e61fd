"""Consumers of the invitations' events: they only enqueue tasks (the outbox relay resends)."""

from __future__ import annotations

from typing import Any

from apps.invitations.tasks import invitation_send_task, verification_send_task
from apps.jobs.events import event_receiver


@event_receiver("invitation.created")
@event_receiver("invitation.resent")
def on_invitation_to_send(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    data = event["data"]
    invitation_send_task.delay(data["invitation_id"], data["send_id"])


@event_receiver("user.signed_up")
def on_signed_up(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    verification_send_task.delay(event["data"]["verification_id"])
