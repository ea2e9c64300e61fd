"""Tasks for the jobs tests' worker (loaded through tests/jobs/worker_settings.py)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from django_redis import get_redis_connection

from apps.jobs.bases import tenant_task
from apps.jobs.events import consume_once
from apps.jobs.models import OutboxEvent


def executions_key(marker: str) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:jobs-test:runs:{marker}"


@tenant_task(name="jobs_test.insert_once")
def insert_once(key: str, marker: str, work_seconds: float = 0.0) -> bool:
    """An idempotent side effect: one row per key, however often the message arrives.

    The effect row has no unique constraint of its own: only `consume_once` keeps
    a redelivered message from writing a second one.
    """
    get_redis_connection("default").incr(executions_key(marker))

    def handle() -> bool:
        OutboxEvent.objects.create(
            event_type="test.jobs_effect",
            source="tests",
            data={"key": key, "marker": marker},
            dispatched_at=timezone.now(),
        )
        time.sleep(work_seconds)  # inside the transaction: a kill here rolls the mark back
        return True

    return bool(consume_once(consumer=f"test.{marker}", event_id=key, handle=handle))


@tenant_task(name="jobs_test.always_transient", max_retries=2, retry_backoff=1, retry_backoff_max=2)
def always_transient(marker: str, password: str = "") -> None:
    get_redis_connection("default").incr(executions_key(marker))
    raise OperationalError("the database went away (a test)")


@tenant_task(name="jobs_test.email_batch_start")
def email_batch_start(marker: str, count: int) -> str:
    """`count` users and a batch e-mailing each of them, committed (the worker then fans
    it out and sends it); returns the batch id. The addresses are `marker-<n>@batch.test`."""
    from apps.accounts.models import User
    from apps.notifications.send import batch_create
    from apps.rbac.grants import Grants

    users = User.objects.bulk_create(
        User(email=f"{marker}-{n}@batch.test", username=f"{marker}-{n}", password="!")
        for n in range(count)
    )
    sender = User.objects.create(
        email=f"{marker}-sender@batch.test", username=f"{marker}-sender", password="!"
    )
    batch = batch_create(
        sender=sender,
        grants=Grants({"notifications.send": None}),
        type="announcement",
        title=f"Batch {marker}",
        body="To many.",
        channels=["email"],
        users=[u.pk for u in users],
    )
    return str(batch.pk)
