"""The platform's own periodic tasks: fanning a per-tenant job out, relaying the outbox.

Their names keep the `core.` prefix they were first scheduled under: beat's
schedule rows (apps/jobs/schedules.py) and running workers refer to them.
"""

from __future__ import annotations

import structlog
from celery import shared_task
from django_tenants.utils import schema_context

from apps.core.tenancy import tenant_schema_names
from apps.jobs.events import outbox_relay
from apps.jobs.periodic import job_fan_out, job_fan_out_continue

logger = structlog.get_logger("apps.jobs.tasks")


@shared_task(name="core.jobs_fan_out", ignore_result=True)
def jobs_fan_out_task(
    job: str,
    walk: str | None = None,
    after_id: int = 0,
    previous: list[str] | None = None,
    queue: str | None = None,
) -> list[str]:
    """Beat's entry point for a per-tenant job (runs in the public schema): starts a walk
    over the tenants; with `walk`, that walk's next page (apps/jobs/periodic.py)."""
    if walk is None:
        queued = job_fan_out(job)
    else:
        queued = job_fan_out_continue(
            job, walk=walk, after_id=after_id, previous=previous or [], queue=queue
        )
    logger.info("job_fanned_out", job=job, tenants=len(queued))
    return queued


@shared_task(name="core.outbox_relay", ignore_result=True)
def outbox_relay_task() -> int:
    """Re-dispatch committed events that were never dispatched, in public and every active tenant."""
    sent = outbox_relay()
    for schema in tenant_schema_names(active_only=True):
        with schema_context(schema):
            sent += outbox_relay()
    return sent
