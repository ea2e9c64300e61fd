"""Periodic jobs that run once per tenant (TENANT_JOBS).

Beat sends `core.jobs_fan_out` with a job's name; the fan-out queues that job's task
once per active tenant, never twice while a tenant's previous run is pending (the
run flag, apps/jobs/run_flags.py). `manage.py jobs_run` queues or runs one by hand.

The fan-out is a walk over the tenants, one page of JOBS_FAN_OUT_BATCH at a time, so
that a thousand tenants never means a thousand messages at once: each page is queued
by a `core.jobs_fan_out` continuation that waits (re-sending itself a second later)
until at most half of the previous page's runs are still pending. So at most 1.5
pages of one job's runs are queued or running at any moment. While a walk goes on,
its own flag (the run flag of the pseudo-tenant FAN_OUT) makes another beat tick of
the same job do nothing; the flag expires after JOBS_FANOUT_LOCK_SECONDS, so a walk
whose continuation was lost (a worker killed while sending it) stops the job for at
most that long.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from celery import current_app
from django.conf import settings
from django_redis import get_redis_connection

from apps.core.tenancy import tenant_schemas_after
from apps.jobs.run_flags import JOB_HEADER, run_flag_key, run_flag_release, run_flag_take

logger = structlog.get_logger("apps.jobs.periodic")


# Periodic jobs that run once per tenant: the name operators use -> the Celery task.
# Any tenant task can be one; the fan-out marks its message with the JOB_HEADER.
TENANT_JOBS: dict[str, str] = {
    "cleanup_expired_sessions": "accounts.cleanup_expired_sessions",
    "sync_user_data": "accounts.sync_user_data",
    "requeue_stale_deliveries": "notifications.requeue_stale",
}


def tenant_job_task(job: str) -> Any:
    """The task object of a per-tenant job (importing every app's tasks first, as a worker does)."""
    current_app.loader.import_default_modules()
    return current_app.tasks[TENANT_JOBS[job]]


def job_enqueue(job: str, schema: str, *, queue: str | None = None) -> str | None:
    """Queue `job` for one tenant unless its previous run is still pending; the task id or None."""
    task_id = str(uuid.uuid4())
    if not run_flag_take(job, schema, task_id):
        logger.info("job_still_pending", job=job, tenant=schema)
        return None
    options: dict[str, Any] = {"queue": queue} if queue else {}
    try:
        current_app.send_task(
            TENANT_JOBS[job],
            task_id=task_id,
            headers={"_schema_name": schema, JOB_HEADER: job},
            **options,
        )
    except BaseException:
        run_flag_release(job, schema, task_id)
        raise
    return task_id


# The run flag's pseudo-schema for a job's walk over the tenants.
FAN_OUT = "__fan_out__"
FAN_OUT_TASK = "core.jobs_fan_out"


def job_fan_out(job: str, *, queue: str | None = None) -> list[str]:
    """Start a walk queuing `job` once per active tenant, unless one is going on already.

    Queues the first page here; the rest follows in continuations (`job_fan_out_continue`).
    Returns the schemas queued now."""
    if job not in TENANT_JOBS:
        raise KeyError(f"Unknown job {job!r}; known: {', '.join(sorted(TENANT_JOBS))}")
    walk = str(uuid.uuid4())
    if not run_flag_take(job, FAN_OUT, walk):
        logger.info("job_fan_out_in_progress", job=job)
        return []
    return _walk_step(job, walk=walk, after_id=0, queue=queue)


def job_fan_out_continue(
    job: str, *, walk: str, after_id: int, previous: list[str], queue: str | None = None
) -> list[str]:
    """The walk's next page, once at most half of the previous page's runs are pending;
    until then it sends itself again a second later. Returns the schemas queued now."""
    redis = get_redis_connection("default")
    if (redis.get(run_flag_key(job, FAN_OUT)) or b"").decode() != walk:
        logger.warning("job_fan_out_walk_lost", job=job)  # expired, or another walk's
        return []
    flags = redis.mget([run_flag_key(job, schema) for schema in previous]) if previous else []
    pending = sum(1 for flag in flags if flag is not None)
    if pending > settings.JOBS_FAN_OUT_BATCH // 2:
        _continue_later(job, walk=walk, after_id=after_id, previous=previous, queue=queue)
        return []
    return _walk_step(job, walk=walk, after_id=after_id, queue=queue)


def _walk_step(job: str, *, walk: str, after_id: int, queue: str | None) -> list[str]:
    page = tenant_schemas_after(after_id, settings.JOBS_FAN_OUT_BATCH)
    queued = [schema for _, schema in page if job_enqueue(job, schema, queue=queue) is not None]
    if len(page) == settings.JOBS_FAN_OUT_BATCH:
        _continue_later(job, walk=walk, after_id=page[-1][0], previous=queued, queue=queue)
    else:
        run_flag_release(job, FAN_OUT, walk)  # the walk is over
    return queued


def _continue_later(
    job: str, *, walk: str, after_id: int, previous: list[str], queue: str | None
) -> None:
    # Renewed at each step: the flag outlives a walk that is alive, however long it is.
    get_redis_connection("default").expire(
        run_flag_key(job, FAN_OUT), settings.JOBS_FANOUT_LOCK_SECONDS
    )
    options: dict[str, Any] = {"queue": queue} if queue else {}
    current_app.send_task(
        FAN_OUT_TASK,
        args=[job],
        kwargs={"walk": walk, "after_id": after_id, "previous": previous, "queue": queue},
        countdown=1,
        **options,
    )
