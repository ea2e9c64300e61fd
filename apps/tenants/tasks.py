"""The tenants app's tasks: dropping tenants whose retention period has passed, and writing
a tenant's archive for an operator (apps/tenants/exports.py), with the request that queues
that job (here, beside its task, so that exports.py, which the task runs, imports no task)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from apps.core.errors import NotFoundError, ServiceUnavailableError
from apps.jobs.retries import retry_options
from apps.tenants.exports import ExportInProgress, tenant_export_run
from apps.tenants.lifecycle import tenants_purge
from apps.tenants.models import Tenant, TenantExport

if TYPE_CHECKING:
    from apps.accounts.models import User

logger = structlog.get_logger("apps.tenants.tasks")


@shared_task(name="tenants.purge_deleted", ignore_result=True)
def tenants_purge_task() -> list[str]:
    """Beat's entry point (runs in the public schema): drop every tenant deleted more than
    TENANT_RETENTION_DAYS ago, schema and all."""
    purged = tenants_purge()
    logger.info("tenants_purged", tenants=purged)
    return purged


@shared_task(
    bind=True,
    name="tenants.export_write",
    ignore_result=True,
    # Sent from the public schema, where it runs: it reads the tenant's schema itself, and
    # a deactivated tenant may be exported too (a tenant task would skip it).
    time_limit=settings.TENANT_EXPORT_TIME_LIMIT,
    soft_time_limit=max(settings.TENANT_EXPORT_TIME_LIMIT - 30, 1),
    **retry_options(),
)
def export_write_task(self: Any, export_id: str) -> bool:
    try:
        return tenant_export_run(export_id=export_id)
    except ExportInProgress as busy:
        # A copy of this message (redelivered: the Redis broker's visibility timeout, or a
        # lost worker) while a run writes the export: look again when that run has ended
        # or counts as lost, in steps that stay below the visibility timeout.
        step = settings.JOBS_RETRY_BACKOFF_MAX
        raise self.retry(
            exc=busy,
            countdown=min(busy.retry_in, step),
            max_retries=settings.TENANT_EXPORT_TIME_LIMIT // step + 2,
        ) from None


def tenant_export_request(*, tenant: Tenant, requested_by: User) -> TenantExport:
    """Record an export of `tenant` and queue the worker's job that writes it.

    503 when the job cannot be queued (the broker is down): the export is then failed at
    once rather than left waiting for a job that will never come.
    """
    if tenant.is_public:
        raise NotFoundError("Tenant not found")
    export = TenantExport.objects.create(
        tenant=tenant, tenant_slug=tenant.slug, requested_by=requested_by
    )

    def enqueue() -> None:
        try:
            export_write_task.delay(str(export.pk))
        except BrokerUnavailable:
            logger.error("tenant_export_not_queued", export_id=str(export.pk), tenant=tenant.slug)
            TenantExport.objects.filter(pk=export.pk).update(
                status=TenantExport.Status.FAILED,
                error="The job queue could not be reached; ask for a new export.",
                finished_at=timezone.now(),
            )
            raise ServiceUnavailableError("The job queue is unavailable; try again.") from None

    transaction.on_commit(enqueue)
    return export
