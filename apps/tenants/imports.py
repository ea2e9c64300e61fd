"""Tenant import: an archive (apps/tenants/archive.py, written by apps/tenants/exports.py)
back as a new tenant.

`manage.py tenant_import <archive> <new slug>`, into a new tenant only, provisioned as
every tenant is (a clone of the template schema, at this code's migration state), then
filled with the archive's rows with their ids; all in one transaction. Audited in the
public schema (`tenant.imported`).

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
from pathlib import Path
from typing import Any

from django.apps import apps as django_apps
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import ConflictError, ValidationError
from apps.core.tenancy import current_schema, public_schema, tenant_connection
from apps.jobs.events import event_record
from apps.notifications.models import Delivery, NotificationBatch
from apps.sso.crypto import secret_decrypt
from apps.sso.models import IdentityProvider
from apps.tenants.archive import EXPORTED_MODELS, ArchivedTenant, ArchiveError
from apps.tenants.archive_reader import (
    constraint_name,
    manifest_read,
    migrations_behind,
    model_load,
)
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import SLUG_TAKEN, slug_conflict, tenant_rows_and_schema
from apps.tenants.validators import settings_errors, slug_errors


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
