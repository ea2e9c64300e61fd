"""Periodic jobs that run once per tenant (TENANT_JOBS).

Beat sends `core.jobs_fan_out` with a job's name; the fan-out queues that job's task
once per active tenant, never twice while a tenant's previous run is pending (the
run flag, apps/jobs/run_flags.py). `manage.py jobs_run` queues or runs one by hand.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from celery import current_app

from apps.core.tenancy import tenant_schema_names
from apps.jobs.run_flags import JOB_HEADER, run_flag_release, run_flag_take

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


def job_fan_out(job: str, *, queue: str | None = None) -> list[str]:
    """Queue `job` once per active tenant; returns the schemas it was queued for."""
    if job not in TENANT_JOBS:
        raise KeyError(f"Unknown job {job!r}; known: {', '.join(sorted(TENANT_JOBS))}")
    return [
        schema
        for schema in tenant_schema_names(active_only=True)
        if job_enqueue(job, schema, queue=queue) is not None
    ]
