"""Consumers of domain events: they only enqueue tasks (the outbox relay resends on failure)."""

from __future__ import annotations

from typing import Any

from apps.accounts.tasks import (
    email_change_mails_send_task,
    email_changed_notice_send_task,
    password_reset_send_task,
)
from apps.jobs.events import event_receiver


@event_receiver("auth.password_reset_requested")
def on_password_reset_requested(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    password_reset_send_task.delay(event["event_id"], event["data"]["email"])


@event_receiver("user.email_change_requested")
def on_email_change_requested(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    data = event["data"]
    email_change_mails_send_task.delay(data["user_id"], data["new_email"])


@event_receiver("user.email_changed")
def on_email_changed(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    data = event["data"]
    email_changed_notice_send_task.delay(data["user_id"], data["old_email"], data["new_email"])
