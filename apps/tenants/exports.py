"""Tenant export and import: a tenant's data as an archive (apps/tenants/archive.py), and an
archive back as a new tenant.

Export: `manage.py tenant_export <slug>`, or an operator's job on the public host's API
(POST /api/v1/tenants/{id}/exports), which a worker writes under TENANT_EXPORT_DIR and
the operator downloads. Audited in the public schema (`tenant.exported`,
`tenant.export_downloaded`).

Import: `manage.py tenant_import <archive> <new slug>`, into a new tenant only,
provisioned as every tenant is (a clone of the template schema, at this code's
migration state), then filled with the archive's rows with their ids; all in one
transaction. Audited in the public schema (`tenant.imported`).

JSON per model rather than `pg_dump`: it needs nothing but Python (a production server
may have no `pg_dump`, or one of another major version than the server), an archive is
tied to no PostgreSQL version and no schema name, and the rows go through Django's
deserializer into a schema the platform made, so `search_path` never matters. The cost:
slower than `pg_dump` on a large tenant.

What an import carries over, and what not:
- Users keep their password hashes: they sign in with their passwords. Their sessions
  and tokens do not: a token of the old tenant names another tenant, and its session is
  not in the archive.
- Identity providers' client secrets stay encrypted with the SSO key of the deployment
  that wrote them (SSO_ENCRYPTION_KEY, else derived from SECRET_KEY). Those this
  deployment cannot decrypt are cleared, and the import says so: set them again.
- Work in flight at export time is the source's to finish: pending deliveries are
  marked failed (the admin can send one again) and unfinished batches failed, never
  sent a second time by the copy.
- An archive from older code (its schema lacked migrations this code has) is loaded
  as Django loads fixtures, fields added since taking their defaults, and the import
  says which migrations it predates; one from newer code is refused.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from kombu.exceptions import OperationalError as BrokerUnavailable

from apps.audit.services import audit_record
from apps.core.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from apps.core.tenancy import current_schema, public_schema, tenant_connection
from apps.jobs.events import event_record
from apps.jobs.retries import TRANSIENT_ERRORS
from apps.notifications.models import Delivery, NotificationBatch
from apps.sso.crypto import secret_decrypt
from apps.sso.models import IdentityProvider
from apps.tenants.archive import (
    EXPORTED_MODELS,
    ArchivedTenant,
    ArchiveError,
    ArchiveWritten,
    archive_write,
    constraint_name,
    manifest_read,
    migrations_behind,
    model_load,
)
from apps.tenants.models import Domain, Tenant, TenantExport
from apps.tenants.services import SLUG_TAKEN, slug_conflict, tenant_rows_and_schema
from apps.tenants.tasks import export_write_task
from apps.tenants.validators import settings_errors, slug_errors

if TYPE_CHECKING:
    from apps.accounts.models import User

logger = structlog.get_logger("apps.tenants.exports")


# ------------------------------------------------------------------ export


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


# ------------------------------------------------------------------ import


@dataclass(frozen=True)
class TenantImported:
    tenant: Tenant
    domain: Domain
    source: ArchivedTenant
    counts: dict[str, int]
    # What the operator should know: migrations the archive predates, secrets cleared, work not resumed.
    notes: list[str] = field(default_factory=list)


def _template_rows_remove() -> None:
    """The rows a new schema starts with (the template's: the system roles) give way to
    the archive's."""
    for label in reversed(EXPORTED_MODELS):
        model = django_apps.get_model(label)
        if model._base_manager.exists():
            model._base_manager.all().delete()


def _sequences_reset() -> None:
    """Ids handed out from here on follow the loaded ones (as `loaddata` does)."""
    statements = connection.ops.sequence_reset_sql(
        no_style(), [django_apps.get_model(label) for label in EXPORTED_MODELS]
    )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _secrets_unreadable_clear() -> int:
    """Clear the client secrets this deployment's SSO key cannot decrypt; how many."""
    unreadable = [
        provider.pk
        for provider in IdentityProvider.objects.exclude(client_secret_encrypted="").only(
            "pk", "client_secret_encrypted"
        )
        if not secret_decrypt(provider.client_secret_encrypted)
    ]
    return IdentityProvider.objects.filter(pk__in=unreadable).update(client_secret_encrypted="")


def _unsent_work_settle(source_slug: str) -> tuple[int, int]:
    """Deliveries and batches in flight at export time are the source's to finish: here
    they are failed (the admin can send a delivery again), never sent a second time."""
    now = timezone.now()
    deliveries = Delivery.objects.filter(status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED,
        last_error=(
            f"Pending when the tenant was exported from '{source_slug}'; not sent by the "
            "imported copy (retry it from the admin to send it)."
        ),
        next_attempt_at=None,
        claimed_at=None,
        updated_at=now,
    )
    batches = NotificationBatch.objects.filter(
        status__in=[NotificationBatch.Status.QUEUED, NotificationBatch.Status.RUNNING]
    ).update(status=NotificationBatch.Status.FAILED, finished_at=now)
    return deliveries, batches


def _new_tenant_check(*, slug: str, name: str, tenant_settings: Any) -> None:
    errors: dict[str, list[str]] = {}
    if problems := slug_errors(slug):
        errors["slug"] = problems
    if not name.strip():
        errors["name"] = ["This field is required."]
    elif len(name) > 200:
        errors["name"] = ["At most 200 characters."]
    if errors:
        raise ValidationError(details=errors)
    if problems := settings_errors(tenant_settings):
        raise ArchiveError(f"the source tenant's settings are invalid here ({problems[0]}).")
    if (conflict := slug_conflict(slug)) is not None:
        raise ConflictError(conflict, details={"slug": [conflict]})


def _tenant_provision(
    *, slug: str, name: str, tenant_settings: dict[str, Any]
) -> tuple[Tenant, Domain]:
    """A new tenant as `tenant_create` provisions one, without its first admin: the archive
    brings the users. (A first admin deleted again would not do: tenant_create's
    `user.created` is dispatched on commit with that admin's id, which an imported user then
    holds, and the welcome would reach them.)"""
    try:
        with transaction.atomic():
            return tenant_rows_and_schema(name=name, slug=slug, tenant_settings=tenant_settings)
    except IntegrityError:
        # Lost a race with a concurrent provisioning of the same slug.
        raise ConflictError(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]}) from None


@contextmanager
def _tenant_schema_only(tenant: Tenant) -> Iterator[None]:
    """`tenant_context` without the public schema on the search path: whatever the rows
    say, they can only be written to the new tenant's own tables."""
    connection_ = tenant_connection()
    previous = connection_.tenant
    connection_.set_tenant(tenant, include_public=False)
    try:
        yield
    finally:
        if previous is None:
            connection_.set_schema_to_public()
        else:
            connection_.set_tenant(previous)


def tenant_import(*, archive_path: Path, slug: str, name: str | None = None) -> TenantImported:
    """Create a tenant `slug` holding the data of an archive (`archive_write`).

    All or nothing: the tenant, its schema and its rows are written in one transaction.
    422 (ArchiveError) for an archive that is not one, is damaged, or was written by newer
    code; 409 when the slug is taken.
    """
    if current_schema() != public_schema():
        raise RuntimeError("Tenants are imported from the public schema.")
    slug = slug.strip().lower()
    try:
        archive = zipfile.ZipFile(archive_path)
    except FileNotFoundError:
        raise ArchiveError(f"there is no file {archive_path}.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise ArchiveError("it is not a zip file, or a damaged one.") from None
    except OSError as exc:
        raise ArchiveError(f"it cannot be read ({exc.strerror or type(exc).__name__}).") from None
    with archive:
        manifest = manifest_read(archive)
        behind = migrations_behind(manifest.migrations)
        source = manifest.source
        name = source.name if name is None else name
        _new_tenant_check(slug=slug, name=name, tenant_settings=source.settings)
        notes = []
        if behind:
            notes.append(
                f"The archive predates {len(behind)} migration(s) of this code "
                f"({', '.join(behind[:5])}{' …' if len(behind) > 5 else ''}): its rows were "
                "loaded as they are, fields added since took their defaults."
            )
        try:
            with transaction.atomic():
                tenant, domain = _tenant_provision(
                    slug=slug, name=name, tenant_settings=dict(source.settings)
                )
                with _tenant_schema_only(tenant):
                    # Content types are cached per database, not per schema: look them up here.
                    ContentType.objects.clear_cache()
                    _template_rows_remove()
                    counts = {
                        entry.label: model_load(archive, entry, lenient=bool(behind))
                        for entry in manifest.models
                    }
                    _sequences_reset()
                    try:
                        connection.check_constraints()
                    except IntegrityError as exc:
                        raise ArchiveError(
                            f"its rows refer to rows it does not hold ({constraint_name(exc)})."
                        ) from None
                    cleared = _secrets_unreadable_clear()
                    deliveries, batches = _unsent_work_settle(source.slug)
                event_record(
                    type="tenant.created",
                    source="tenants",
                    data={
                        "tenant_id": tenant.pk,
                        "slug": slug,
                        "schema_name": tenant.schema_name,
                        "imported_from": source.slug,
                    },
                )
                audit_record(
                    action="tenant.imported",
                    target=tenant,
                    changes={
                        "source": {"slug": source.slug, "schema_name": source.schema_name},
                        "archive_created_at": manifest.created_at,
                        "platform_version": manifest.platform_version,
                        "counts": counts,
                    },
                )
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise ArchiveError("a data file is damaged.") from None
        finally:
            ContentType.objects.clear_cache()
    if cleared:
        notes.append(
            f"{cleared} identity provider client secret(s) could not be decrypted with this "
            "deployment's SSO key and were cleared: set them again on the provider."
        )
    if deliveries or batches:
        notes.append(
            f"{deliveries} pending delivery(ies) and {batches} unfinished batch(es) were "
            "marked failed: the source tenant sends them."
        )
    return TenantImported(tenant=tenant, domain=domain, source=source, counts=counts, notes=notes)
