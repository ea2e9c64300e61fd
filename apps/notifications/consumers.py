"""Consumers of domain events: the receivers only enqueue; the tasks (tasks.py) do the work,
once per event.

    user.created           -> the welcome notification (in-app and e-mail)
    user.updated           -> the user's cached auth state and grants are dropped
    auth.password_changed  -> a security notice (cannot be turned off)
    auth.mfa_*             -> a security notice each (MFA_NOTICES; cannot be turned off)

Only tenants' events are consumed: notifications live in tenant schemas, and a
platform operator's events (public schema) are left alone. A receiver runs on
commit of the change (apps/jobs/events.py); if it cannot
enqueue (broker down), the event stays pending in the outbox and the relay
sends it again. Each task marks (consumer, event_id) first in its own
transaction (`consume_once`), so an event delivered twice, by the relay or by
the broker after a lost worker, has its effect once.
"""

from __future__ import annotations

from typing import Any

from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import current_schema
from apps.jobs.events import event_receiver
from apps.notifications.tasks import (
    MFA_NOTICES,
    mfa_notice_task,
    password_changed_notice_task,
    user_caches_refresh_task,
    welcome_send_task,
)


def _in_a_tenant() -> bool:
    """Whether the event being dispatched belongs to a tenant. Notifications live in tenant
    schemas only: the public schema's events (platform operators') have nothing here to do,
    and enqueuing a tenant task from public would fail the event again at every relay."""
    return current_schema() != get_public_schema_name()


@event_receiver("user.created")
def on_user_created(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    welcome_send_task.delay(event["event_id"], event["data"]["user_id"])


@event_receiver("user.updated")
def on_user_updated(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    user_caches_refresh_task.delay(event["event_id"], event["data"]["user_id"])


@event_receiver("auth.password_changed")
def on_password_changed(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    data = event["data"]
    password_changed_notice_task.delay(
        event["event_id"], data["user_id"], data.get("how", "change")
    )


def on_mfa_event(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    mfa_notice_task.delay(event["event_id"], event["event_type"], dict(event["data"]))


for _event_type in MFA_NOTICES:
    event_receiver(_event_type, dispatch_uid=f"notifications.{_event_type}")(on_mfa_event)
