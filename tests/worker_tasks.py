"""Tasks that exist for the tests' real Celery worker (loaded through CELERY_IMPORTS in test settings)."""

from __future__ import annotations

from django.utils import timezone

from apps.core.tenancy import current_schema
from apps.jobs.bases import tenant_task
from apps.jobs.models import OutboxEvent


@tenant_task(name="tests.record_schema")
def record_schema(marker: str) -> str:
    """Leaves a row in whatever schema the worker ran the task in, and names that schema.

    The worker commits it, so it outlives the test: marked dispatched, it is nothing a
    later test's outbox relay would find pending (30 s on, it would be)."""
    OutboxEvent.objects.create(
        event_type="test.worker_probe",
        source="tests",
        data={"marker": marker, "schema": current_schema()},
        dispatched_at=timezone.now(),
    )
    return current_schema()
