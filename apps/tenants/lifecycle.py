"""A tenant's deletion and what follows: deleted (deactivated, kept TENANT_RETENTION_DAYS),
restored, or dropped with its schema, at once or by `tenants_purge`."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.core.errors import NotFoundError, ServiceUnavailableError, ValidationError
from apps.jobs.events import event_record
from apps.jobs.models import JobFailure
from apps.tenants.models import Tenant
from apps.tenants.public_schema import require_public_schema, tenant_audit
from apps.tenants.schema_cache import schema_cache_purge, schema_cache_purge_quietly

logger = structlog.get_logger("apps.tenants.lifecycle")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "?"


def pending_deletion_message(tenant: Tenant) -> str:
    return (
        f"The tenant '{tenant.slug}' is pending deletion: its data is dropped after "
        f"{_when(tenant.purge_after)}. Restore it, or delete it now to free the slug."
    )


def tenant_delete(*, tenant: Tenant, now: bool = False) -> Tenant | None:
    """Delete a tenant: it is deactivated at once (its hosts answer 404) and marked
    `deleted_at`; its schema, rows and domains are dropped TENANT_RETENTION_DAYS later by
    `tenants_purge`, or at once with `now` (nothing of it can be restored then).

    Returns the tenant while it is pending deletion, None once it is dropped. Deleting a
    tenant already pending deletion changes nothing (unless `now`). Audited in the public
    schema (`tenant.deleted`, then `tenant.purged` when dropped); those rows stay.

    With `now`, the cache is cleared of the tenant's entries first: if Redis is
    unreachable, nothing is dropped (503)."""
    require_public_schema()
    if tenant.is_public:
        raise ValidationError("The platform's own tenant cannot be deleted.")
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if locked is None:
            raise NotFoundError("Tenant not found")
        if locked.deleted_at is None:
            was_active = locked.is_active
            locked.is_active = False
            locked.deleted_at = timezone.now()
            locked.save(update_fields=["is_active", "deleted_at", "updated_at"])
            event_record(
                type="tenant.deleted",
                source="tenants",
                data={"tenant_id": locked.pk, "slug": locked.slug},
            )
            tenant_audit(
                "tenant.deleted",
                locked.pk,
                {"is_active": [was_active, False], "deleted_at": [None, locked.deleted_at]},
            )
        if now:
            _tenant_drop(locked)
            return None
    return locked


CONFIRM_NOW = (
    "To delete the tenant now, repeat its slug ('{slug}'): its schema and all its data are "
    "dropped at once and cannot be restored."
)


def require_deletion_confirmed(*, tenant: Tenant, confirm: str | None) -> None:
    """A deletion `now` is asked for by repeating the tenant's slug (API, admin); 422 if not."""
    if (confirm or "").strip().lower() != tenant.slug:
        raise ValidationError.for_field("confirm", CONFIRM_NOW.format(slug=tenant.slug))


def tenant_restore(*, tenant: Tenant) -> Tenant:
    """Undo a deletion within the retention period: the tenant is active again, with all
    its data. A tenant not pending deletion is returned unchanged."""
    require_public_schema()
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if locked is None or locked.is_public:
            raise NotFoundError("Tenant not found")
        if locked.deleted_at is None:
            return locked
        deleted_at = locked.deleted_at
        locked.deleted_at = None
        locked.is_active = True
        locked.save(update_fields=["is_active", "deleted_at", "updated_at"])
        event_record(type="tenant.restored", source="tenants", data={"tenant_id": locked.pk})
        tenant_audit(
            "tenant.restored",
            locked.pk,
            {"is_active": [False, True], "deleted_at": [deleted_at, None]},
        )
    return locked


def _tenant_drop(tenant: Tenant) -> None:
    """Drop the tenant's schema (all its data), its row and its domains, in the caller's
    transaction, and forget what the cache and the job log hold about it."""
    schema_name, slug = tenant.schema_name, tenant.slug
    # First, so a Redis outage stops the drop rather than leave entries that would be
    # read as a new tenant's with the same slug (same schema name, ids that start over).
    schema_cache_purge(schema_name)
    tenant_audit(
        "tenant.purged",
        tenant.pk,
        {
            "name": tenant.name,
            "slug": slug,
            "schema_name": schema_name,
            "domains": sorted(tenant.domains.values_list("domain", flat=True)),
            "deleted_at": tenant.deleted_at,
        },
    )
    event_record(
        type="tenant.purged",
        source="tenants",
        data={"tenant_id": tenant.pk, "slug": slug, "schema_name": schema_name},
    )
    # Failed tasks of a schema that is gone: a retry would run in whatever next has its name.
    JobFailure.objects.filter(tenant_schema=schema_name).delete()
    # PostgreSQL refuses to drop a table with deferred constraint checks still pending in
    # this transaction (rows written in it, as in one that also created the tenant): run them.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    # django-tenants' own drop (DROP SCHEMA ... CASCADE), then the row; the domains go
    # with it (cascade), and the receivers in signals.py invalidate their cached lookups.
    tenant.delete(force_drop=True)
    transaction.on_commit(lambda: schema_cache_purge_quietly(schema_name))
    logger.info("tenant_purged", tenant=schema_name)


def tenants_purge(*, older_than_days: int | None = None, now: datetime | None = None) -> list[str]:
    """Drop the tenants deleted more than `older_than_days` (TENANT_RETENTION_DAYS) ago;
    returns their slugs. Each in its own transaction: one that fails (logged) does not
    keep the others, and is tried again on the next run."""
    require_public_schema()
    days = settings.TENANT_RETENTION_DAYS if older_than_days is None else older_than_days
    horizon = (now or timezone.now()) - timedelta(days=days)
    due = (
        Tenant.objects.customers()
        .filter(deleted_at__lte=horizon, is_active=False)
        .order_by("deleted_at", "id")
        .values_list("pk", flat=True)
    )
    purged: list[str] = []
    for pk in list(due):
        try:
            with transaction.atomic():
                # Still due (not restored since), and not being restored right now.
                tenant = (
                    Tenant.objects.select_for_update(skip_locked=True)
                    .filter(pk=pk, deleted_at__lte=horizon, is_active=False)
                    .first()
                )
                if tenant is None:
                    continue
                slug = tenant.slug
                _tenant_drop(tenant)
        except (DatabaseError, ServiceUnavailableError):
            logger.exception("tenant_purge_failed", tenant_id=pk)
            continue
        purged.append(slug)
    return purged
