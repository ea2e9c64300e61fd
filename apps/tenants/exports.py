"""Tenant export: a tenant's data as an archive (apps/tenants/archive.py), for
`manage.py tenant_export <slug>` or an operator's job on the public host's API
(POST /api/v1/tenants/{id}/exports, queued by `tasks.tenant_export_request`), which a
worker writes under TENANT_EXPORT_DIR and the operator downloads. Audited in the public
schema (`tenant.exported`, `tenant.export_downloaded`). Reading an archive back as a new
tenant: apps/tenants/imports.py.

JSON per model rather than `pg_dump`: it needs nothing but Python (a production server
may have no `pg_dump`, or one of another major version than the server), an archive is
tied to no PostgreSQL version and no schema name, and the rows go through Django's
deserializer into a schema the platform made, so `search_path` never matters. The cost:
slower than `pg_dump` on a large tenant.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.services import audit_record
from apps.core.errors import ConflictError, NotFoundError
from apps.core.tenancy import public_schema
from apps.jobs.retries import TRANSIENT_ERRORS
from apps.tenants.archive_writer import ArchiveWritten, archive_write
from apps.tenants.models import Tenant, TenantExport

if TYPE_CHECKING:
    from apps.accounts.models import User


def tenant_export(*, tenant: Tenant, destination: Path, actor: User | None) -> ArchiveWritten:
    """Write the archive of `tenant` and audit it (`tenant.exported`) in the public schema;
    `actor`: the operator who asked, None for a command."""
    written = archive_write(tenant=tenant, destination=destination)
    with schema_context(public_schema()):
        audit_record(
            action="tenant.exported",
            target=tenant,
            changes={
                "file": written.path.name,
                "size": written.size,
                "sha256": written.sha256,
                "counts": written.manifest.counts,
            },
            actor=actor,
        )
    return written


# ------------------------------------------------------------------ export jobs (the API)


def export_dir() -> Path:
    return Path(settings.TENANT_EXPORT_DIR)


class ExportInProgress(Exception):
    """Another run is writing this export; `retry_in` seconds from now it has finished or
    counts as lost (its worker killed: a redelivered message finds it so)."""

    def __init__(self, retry_in: int) -> None:
        super().__init__(f"another run is writing this export; try again in {retry_in} s")
        self.retry_in = retry_in


def _export_claim(export_id: Any) -> TenantExport | None:
    """Take the export for this run: queued, failed (a retry), or running for longer than
    a run may last (its worker was lost). None when it is done or gone."""
    now = timezone.now()
    lease = timedelta(seconds=settings.TENANT_EXPORT_TIME_LIMIT)
    with transaction.atomic():
        export = TenantExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status == TenantExport.Status.DONE:
            return None
        if export.status == TenantExport.Status.RUNNING and export.started_at is not None:
            if export.started_at + lease > now:
                raise ExportInProgress(int((export.started_at + lease - now).total_seconds()) + 1)
        export.status = TenantExport.Status.RUNNING
        export.started_at = now
        export.error = ""
        export.save(update_fields=["status", "started_at", "error"])
    return export


def tenant_export_run(*, export_id: Any) -> bool:
    """The worker's side: write the archive of a requested export. Idempotent: a run that
    finds it done does nothing (False); one that finds another run writing it raises
    ExportInProgress (the task tries again later), so two runs never write at once."""
    export = _export_claim(export_id)
    if export is None:
        return False
    tenant = Tenant.objects.filter(pk=export.tenant_id).first() if export.tenant_id else None
    if tenant is None:
        _export_fail(export, "The tenant no longer exists.")
        return False
    name = f"{export.pk}.zip"
    try:
        written = tenant_export(
            tenant=tenant, destination=export_dir() / name, actor=export.requested_by
        )
    except TRANSIENT_ERRORS:
        # Retried (apps.jobs.retries): the next run takes it again.
        TenantExport.objects.filter(pk=export.pk).update(status=TenantExport.Status.QUEUED)
        raise
    except BaseException as exc:
        _export_fail(export, f"The export failed ({type(exc).__name__}); the worker's log has why.")
        raise
    export.status = TenantExport.Status.DONE
    export.file_name = name
    export.size = written.size
    export.sha256 = written.sha256
    export.counts = written.manifest.counts
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "file_name", "size", "sha256", "counts", "finished_at"])
    return True


def _export_fail(export: TenantExport, reason: str) -> None:
    export.status = TenantExport.Status.FAILED
    export.error = reason[:500]
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "error", "finished_at"])


def tenant_export_get(*, tenant: Tenant, export_id: Any) -> TenantExport:
    export = TenantExport.objects.filter(pk=export_id, tenant=tenant).first()
    if export is None:
        raise NotFoundError("Export not found")
    return export


def tenant_export_archive(*, export: TenantExport) -> Path:
    """The finished archive of `export`, for a platform operator to download (audited)."""
    if export.status != TenantExport.Status.DONE:
        raise ConflictError(
            f"The export is {export.status}, not done: its archive cannot be downloaded.",
            details={"status": [export.status]},
        )
    path = export_dir() / export.file_name
    if not export.file_name or not path.is_file():
        raise NotFoundError("The archive of this export is no longer on the server.")
    audit_record(
        action="tenant.export_downloaded",
        target=export.tenant,
        changes={"export_id": str(export.pk), "sha256": export.sha256},
    )
    return path
