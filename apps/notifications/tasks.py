"""The notification jobs: fan a batch out and send its chunks, requeue lost deliveries,
and the consumers of domain events (the receivers in consumers.py enqueue these).

The tasks are thin: each calls a service (notify.py, batches.py, delivery_queue.py)
and turns its outcome into Celery's terms (a retry, a failure). Nothing in the app
imports this module but consumers.py and send.py (which hand events and batches to
these tasks). The one task that services hand work to, `deliver`, is in
delivery_queue.py, below them.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, NoReturn

import structlog
from celery import Task
from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.accounts.authentication import user_state_key
from apps.accounts.services.links import sign_in_link
from apps.jobs.bases import tenant_task
from apps.jobs.events import consume_once
from apps.notifications.batch_progress import batch_mark_failed
from apps.notifications.batches import TRANSIENT, batch_chunk_send, batch_fan_out
from apps.notifications.delivery_queue import deliveries_requeue_stale
from apps.notifications.models import Channel
from apps.notifications.notify import notification_send
from apps.notifications.sql import live_active_user
from apps.rbac.grants import grants_key

logger = structlog.get_logger("apps.notifications.tasks")

# ------------------------------------------------------------------ deliveries


@tenant_task(name="notifications.requeue_stale", ignore_result=True)
def requeue_stale_deliveries() -> int:
    """Periodic, per tenant: enqueue pending deliveries whose task was lost."""
    return deliveries_requeue_stale()


# ------------------------------------------------------------------ batches


def _retry_or_fail(task: Task, exc: Exception, batch_id: str) -> NoReturn:
    if task.request.retries >= (task.max_retries or 0):
        batch_mark_failed(batch_id=uuid.UUID(batch_id))
        raise exc
    raise task.retry(exc=exc, countdown=min(60, 2 ** (task.request.retries + 1)))


@tenant_task(bind=True, name="notifications.batch_fan_out", ignore_result=True, max_retries=5)
def batch_fan_out_task(self: Task, batch_id: str) -> int:
    try:
        pending = batch_fan_out(batch_id=uuid.UUID(batch_id))
    except TRANSIENT as exc:
        _retry_or_fail(self, exc, batch_id)
    transaction.on_commit(functools.partial(_chunks_enqueue, batch_id, pending))
    return len(pending)


def _chunks_enqueue(batch_id: str, indexes: list[int]) -> None:
    for index in indexes:
        batch_chunk_task.delay(batch_id, index)


@tenant_task(bind=True, name="notifications.batch_chunk", ignore_result=True, max_retries=5)
def batch_chunk_task(self: Task, batch_id: str, index: int) -> int:
    try:
        return batch_chunk_send(batch_id=uuid.UUID(batch_id), index=index)
    except TRANSIENT as exc:
        _retry_or_fail(self, exc, batch_id)


# ------------------------------------------------------------------ consumers of events


@tenant_task(name="notifications.welcome_send")
def welcome_send_task(event_id: str, user_id: int) -> bool:
    """user.created: the welcome notification (in-app and e-mail)."""

    def handle() -> bool:
        user = live_active_user(user_id)
        if user is None:
            return False  # gone or deactivated before the welcome went out
        notification_send(
            user=user,
            type="welcome",
            source_event_id=event_id,
            channels=[Channel.IN_APP, Channel.EMAIL],
            data={"sign_in_url": sign_in_link(is_staff=user.is_staff)},
        )
        return True

    return bool(consume_once(consumer="notifications.welcome", event_id=event_id, handle=handle))


@tenant_task(name="notifications.user_caches_refresh")
def user_caches_refresh_task(event_id: str, user_id: int) -> bool:
    """user.updated: drop the user's cached auth state and grants."""

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


@tenant_task(name="notifications.password_changed_notice")
def password_changed_notice_task(event_id: str, user_id: int, how: str = "change") -> bool:
    """auth.password_changed: a security notice (cannot be turned off)."""

    def handle() -> bool:
        user = live_active_user(user_id)
        if user is None:
            return False
        notification_send(
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


# The MFA events (apps/mfa) and the security notice each one sends.
MFA_NOTICES: dict[str, str] = {
    "auth.mfa_factor_added": "security.mfa_factor_added",
    "auth.mfa_factor_removed": "security.mfa_factor_removed",
    "auth.mfa_failed": "security.mfa_failed",
    "auth.mfa_recovery_code_used": "security.mfa_recovery_code_used",
    "auth.mfa_recovery_codes_regenerated": "security.mfa_recovery_codes_regenerated",
}


@tenant_task(name="notifications.mfa_notice")
def mfa_notice_task(event_id: str, event_type: str, data: dict[str, Any]) -> bool:
    """auth.mfa_*: a security notice (cannot be turned off)."""
    notice_type = MFA_NOTICES[event_type]

    def handle() -> bool:
        user = live_active_user(int(data["user_id"]))
        if user is None:
            return False
        notification_send(
            user=user,
            type=notice_type,
            is_security=True,
            source_event_id=event_id,
            data={k: v for k, v in data.items() if k in ("kind", "method", "remaining")},
        )
        return True

    return bool(
        consume_once(consumer=f"notifications.{notice_type}", event_id=event_id, handle=handle)
    )
