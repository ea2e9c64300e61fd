"""Consumers of domain events: the receivers only enqueue; the tasks do the work, once per event.

    user.created           -> the welcome notification (in-app and e-mail)
    user.updated           -> the user's cached auth state and grants are dropped
    auth.password_changed  -> a security notice (cannot be turned off)

Only tenants' events are consumed: notifications live in tenant schemas, and a
platform operator's events (public schema) are left alone. A receiver runs on
commit of the change (apps/core/events.py); if it cannot
enqueue (broker down), the event stays pending in the outbox and the relay
sends it again. Each task marks (consumer, event_id) first in its own
transaction (`consume_once`), so an event delivered twice, by the relay or by
the broker after a lost worker, has its effect once.
"""

from __future__ import annotations

from typing import Any

import structlog

from apps.core.events import event_receiver
from apps.core.jobs import consume_once
from apps.core.tasks import tenant_task

logger = structlog.get_logger("apps.notifications.consumers")


def _in_a_tenant() -> bool:
    """Whether the event being dispatched belongs to a tenant. Notifications live in tenant
    schemas only: the public schema's events (platform operators') have nothing here to do,
    and enqueuing a tenant task from public would fail the event again at every relay."""
    from django_tenants.utils import get_public_schema_name

    from apps.core.tenancy import current_schema

    return current_schema() != get_public_schema_name()


def _live_user(user_id: int) -> Any:
    from apps.notifications.sql import live_active_user

    return live_active_user(user_id)


# ------------------------------------------------------------------ user.created


@tenant_task(name="notifications.welcome_send")
def welcome_send_task(event_id: str, user_id: int) -> bool:
    from apps.accounts.services.links import sign_in_link
    from apps.notifications.models import Channel
    from apps.notifications.services import notify

    def handle() -> bool:
        user = _live_user(user_id)
        if user is None:
            return False  # gone or deactivated before the welcome went out
        notify(
            user=user,
            type="welcome",
            source_event_id=event_id,
            channels=[Channel.IN_APP, Channel.EMAIL],
            data={"sign_in_url": sign_in_link(is_staff=user.is_staff)},
        )
        return True

    return bool(consume_once(consumer="notifications.welcome", event_id=event_id, handle=handle))


@event_receiver("user.created")
def on_user_created(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    welcome_send_task.delay(event["event_id"], event["data"]["user_id"])


# ------------------------------------------------------------------ user.updated


@tenant_task(name="notifications.user_caches_refresh")
def user_caches_refresh_task(event_id: str, user_id: int) -> bool:
    from django_redis import get_redis_connection
    from redis.exceptions import RedisError

    from apps.accounts.authentication import user_state_key
    from apps.rbac.grants import grants_key

    def handle() -> bool:
        # The next request reloads both from the database. The services already
        # drop them on commit; this catches a drop lost while Redis was away.
        try:
            get_redis_connection("default").delete(user_state_key(user_id), grants_key(user_id))
        except RedisError:
            logger.warning("user_caches_not_refreshed", user_id=user_id)
            raise
        return True

    return bool(
        consume_once(consumer="notifications.user_caches", event_id=event_id, handle=handle)
    )


@event_receiver("user.updated")
def on_user_updated(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    user_caches_refresh_task.delay(event["event_id"], event["data"]["user_id"])


# ------------------------------------------------------------------ auth.password_changed


@tenant_task(name="notifications.password_changed_notice")
def password_changed_notice_task(event_id: str, user_id: int, how: str = "change") -> bool:
    from apps.notifications.services import notify

    def handle() -> bool:
        user = _live_user(user_id)
        if user is None:
            return False
        notify(
            user=user,
            type="security.password_changed",
            is_security=True,
            source_event_id=event_id,
            data={"how": how},
        )
        return True

    return bool(
        consume_once(consumer="notifications.password_changed", event_id=event_id, handle=handle)
    )


@event_receiver("auth.password_changed")
def on_password_changed(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    if not _in_a_tenant():
        return
    data = event["data"]
    password_changed_notice_task.delay(
        event["event_id"], data["user_id"], data.get("how", "change")
    )
