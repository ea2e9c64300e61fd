"""The tenants' periodic job: dropping those whose retention period has passed."""

from __future__ import annotations

import structlog
from celery import shared_task

from apps.tenants.services import tenants_purge

logger = structlog.get_logger("apps.tenants.tasks")


@shared_task(name="tenants.purge_deleted", ignore_result=True)
def tenants_purge_task() -> list[str]:
    """Beat's entry point (runs in the public schema): drop every tenant deleted more than
    TENANT_RETENTION_DAYS ago, schema and all."""
    purged = tenants_purge()
    logger.info("tenants_purged", tenants=purged)
    return purged
