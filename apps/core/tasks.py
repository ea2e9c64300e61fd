"""Task bases: every task knows its tenant, and a tenant task refuses to run without one.

The Celery app (platform_site/celery.py) is tenant-schemas-celery's, so every
task message carries the schema it was sent from and the worker switches to it
before the task runs. `tenant_task` adds the guard both ways: sending one from
the public schema raises at once, and a message that arrives without a tenant
(sent by hand, or by an older producer) fails instead of quietly running
against the public schema. A deactivated tenant's tasks are skipped.

Tenant tasks retry transient errors (apps/core/jobs.py) with exponential
backoff, a bounded number of times; a task that fails for good is recorded as
a JobFailure. Periodic jobs (TENANT_JOBS) are fanned out by `core.jobs_fan_out`
once per active tenant, never twice while a tenant's previous run is pending
(a Redis flag, cleared when the run ends: see apps/core/jobs.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import structlog
from celery import shared_task
from django_tenants.utils import get_public_schema_name
from tenant_schemas_celery.task import TenantTask

from apps.core.jobs import (
    JOB_HEADER,
    request_header,
    retry_options,
    run_flag_release,
    run_flag_take,
)
from apps.core.tenancy import current_schema, tenant_connection

logger = structlog.get_logger("apps.core.tasks")


class TenantContextMissing(RuntimeError):
    pass


class TenantRequiredTask(TenantTask):
    abstract = True
    # A deactivated tenant's work waits for nobody: its tasks are skipped, not failed.
    runs_for_inactive_tenant = False
    # Work for an app that also lives in the public schema (apps.accounts: platform
    # operators) may run there too, sent from there (`tenant_task(..., allows_public=True)`).
    allows_public = False

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        headers = options.get("headers") or {}
        schema = headers.get("_schema_name") or current_schema()
        if self.allows_public and schema == get_public_schema_name():
            return super().apply_async(args, kwargs, **options)
        if not schema or schema == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} needs a tenant: send it from inside a tenant's schema "
                "(a request on a tenant host, or `with tenant_context(tenant):`)."
            )
        return super().apply_async(args, kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.allows_public and current_schema() == get_public_schema_name():
            return super().__call__(*args, **kwargs)
        if current_schema() == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} received without a tenant; refusing to run."
            )
        if not self.runs_for_inactive_tenant and not self._tenant_is_active():
            logger.info("task_skipped_inactive_tenant", task=self.name, tenant=current_schema())
            return None
        return super().__call__(*args, **kwargs)

    def _tenant_is_active(self) -> bool:
        from apps.tenants.models import Tenant

        if request_header(self.request, JOB_HEADER):
            # A periodic run: read fresh, the worker's cached tenant may predate a deactivation.
            return Tenant.objects.filter(schema_name=current_schema(), is_active=True).exists()
        # The worker's tenant object (cached for CELERY_TASK_TENANT_CACHE_SECONDS).
        tenant = getattr(tenant_connection(), "tenant", None)
        return getattr(tenant, "is_active", True) is not False


def tenant_task(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """`shared_task` for work that belongs to one tenant, retrying transient errors."""
    kwargs.setdefault("base", TenantRequiredTask)
    for option, value in retry_options().items():
        kwargs.setdefault(option, value)
    return shared_task(*args, **kwargs)


# Periodic jobs that run once per tenant: the name operators use -> the Celery task.
# Any tenant task can be one; the fan-out marks its message with the JOB_HEADER.
TENANT_JOBS: dict[str, str] = {
    "cleanup_expired_sessions": "accounts.cleanup_expired_sessions",
    "sync_user_data": "accounts.sync_user_data",
    "requeue_stale_deliveries": "notifications.requeue_stale",
}


def tenant_job_task(job: str) -> Any:
    """The task object of a per-tenant job (importing every app's tasks first, as a worker does)."""
    from platform_site.celery import app

    app.loader.import_default_modules()
    return app.tasks[TENANT_JOBS[job]]


def job_enqueue(job: str, schema: str, *, queue: str | None = None) -> str | None:
    """Queue `job` for one tenant unless its previous run is still pending; the task id or None."""
    from platform_site.celery import app

    task_id = str(uuid.uuid4())
    if not run_flag_take(job, schema, task_id):
        logger.info("job_still_pending", job=job, tenant=schema)
        return None
    try:
        app.send_task(
            TENANT_JOBS[job],
            task_id=task_id,
            headers={"_schema_name": schema, JOB_HEADER: job},
            **({"queue": queue} if queue else {}),
        )
    except BaseException:
        run_flag_release(job, schema, task_id)
        raise
    return task_id


def job_fan_out(job: str, *, queue: str | None = None) -> list[str]:
    """Queue `job` once per active tenant; returns the schemas it was queued for."""
    from apps.tenants.selectors import tenant_schema_names

    if job not in TENANT_JOBS:
        raise KeyError(f"Unknown job {job!r}; known: {', '.join(sorted(TENANT_JOBS))}")
    return [
        schema
        for schema in tenant_schema_names(active_only=True)
        if job_enqueue(job, schema, queue=queue) is not None
    ]


@shared_task(name="core.jobs_fan_out", ignore_result=True)
def jobs_fan_out_task(job: str) -> list[str]:
    """Beat's entry point for a per-tenant job (runs in the public schema)."""
    queued = job_fan_out(job)
    logger.info("job_fanned_out", job=job, tenants=len(queued))
    return queued


@shared_task(name="core.outbox_relay", ignore_result=True)
def outbox_relay_task() -> int:
    """Re-dispatch committed events that were never dispatched, in public and every active tenant."""
    from django_tenants.utils import schema_context

    from apps.core.events import outbox_relay
    from apps.tenants.selectors import tenant_schema_names

    sent = outbox_relay()
    for schema in tenant_schema_names(active_only=True):
        with schema_context(schema):
            sent += outbox_relay()
    return sent


@shared_task(name="core.invalidations_replay", ignore_result=True)
def invalidations_replay_task() -> int:
    """Apply the cache invalidations Redis missed, then forget them (apps/core/invalidation.py)."""
    from apps.core.invalidation import invalidations_replay

    return invalidations_replay()
