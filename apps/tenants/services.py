from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import (
    get_public_schema_name,
    schema_context,
    schema_exists,
    tenant_context,
)

from apps.accounts.models import User, normalize_email
from apps.accounts.services.users import user_create
from apps.audit.services import audit_record
from apps.core.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from apps.core.tenancy import current_schema
from apps.jobs.events import event_record
from apps.jobs.models import JobFailure
from apps.rbac.services import owner_grant
from apps.tenants.models import Domain, Tenant
from apps.tenants.schema_cache import schema_cache_purge, schema_cache_purge_quietly
from apps.tenants.schemas import schema_clone_from_template
from apps.tenants.validators import (
    hostname_errors,
    loosening_errors,
    schema_name_for,
    settings_errors,
    slug_errors,
)

logger = structlog.get_logger("apps.tenants.services")

SLUG_TAKEN = "A tenant with this slug already exists"


@dataclass(frozen=True)
class TenantProvisioned:
    tenant: Tenant
    domain: Domain
    admin: User
    # Set only when the platform generated the admin's password; shown once, never stored in clear.
    generated_password: str | None


def tenant_hostname(slug: str) -> str:
    return f"{slug}.{settings.PLATFORM_BASE_DOMAIN}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "?"


def pending_deletion_message(tenant: Tenant) -> str:
    return (
        f"The tenant '{tenant.slug}' is pending deletion: its data is dropped after "
        f"{_when(tenant.purge_after)}. Restore it, or delete it now to free the slug."
    )


def slug_conflict(slug: str) -> str | None:
    """Why a new tenant cannot take `slug` (a valid one), or None when it is free.

    A deleted tenant keeps its slug until its schema is dropped; a schema left without a
    tenant (by a deletion before tenant deletion was a service) keeps it too."""
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None:
        return pending_deletion_message(existing) if existing.is_deleted else SLUG_TAKEN
    hostname = tenant_hostname(slug)
    if Domain.objects.filter(domain=hostname).exists():
        return f"The slug is not free: its host {hostname} is a domain of another tenant."
    schema_name = schema_name_for(slug)
    if schema_exists(schema_name, case_sensitive=False):
        return (
            f"The slug is not free: a schema named '{schema_name}' exists without a tenant "
            "(left by an earlier deletion). Drop it in PostgreSQL once you know it holds "
            "nothing you need."
        )
    return None


def _audit(action: str, tenant_id: int, changes: Mapping[str, Any]) -> None:
    """One audit row about a tenant in the public schema, in the caller's transaction: the
    operators' log. Who did it comes from the request (an operator on the public host; on
    a tenant's host, by address only: that user is not a user of the public schema)."""
    with schema_context(get_public_schema_name()):
        audit_record(action=action, target_type="tenant", target_id=tenant_id, changes=changes)


def _require_public_schema() -> None:
    if current_schema() != get_public_schema_name():
        raise RuntimeError("Tenants are created and deleted from the public schema.")


def _validate_new_tenant(
    *, name: str, slug: str, admin_email: str, admin_password: str | None, tenant_settings: Any
) -> None:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["This field is required."]
    elif len(name) > 200:
        errors["name"] = ["At most 200 characters."]
    if problems := slug_errors(slug):
        errors["slug"] = problems
    try:
        validate_email(admin_email)
    except DjangoValidationError as exc:
        errors["admin_email"] = list(exc.messages)
    if admin_password is not None:
        try:
            validate_password(admin_password, user=User(email=admin_email))
        except DjangoValidationError as exc:
            errors["admin_password"] = list(exc.messages)
    if problems := settings_errors(tenant_settings):
        errors["settings"] = problems
    if errors:
        raise ValidationError(details=errors)


def tenant_create(
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_password: str | None = None,
    admin_full_name: str = "",
    tenant_settings: Mapping[str, Any] | None = None,
) -> TenantProvisioned:
    """Provision a tenant: its row, primary domain, schema and first admin, all or nothing.

    Everything happens in one transaction, DDL included (PostgreSQL's DDL is
    transactional), so a failure at any step leaves no row, domain or schema.
    """
    _require_public_schema()
    slug = slug.strip().lower()
    admin_email = normalize_email(admin_email)
    raw_settings = {} if tenant_settings is None else tenant_settings
    _validate_new_tenant(
        name=name,
        slug=slug,
        admin_email=admin_email,
        admin_password=admin_password,
        tenant_settings=raw_settings,
    )
    schema_name = schema_name_for(slug)
    hostname = tenant_hostname(slug)
    if (conflict := slug_conflict(slug)) is not None:
        raise ConflictError(conflict, details={"slug": [conflict]})

    generated = None
    if admin_password is None:
        generated = admin_password = secrets.token_urlsafe(18)

    try:
        with transaction.atomic():
            tenant, domain = tenant_rows_and_schema(
                name=name, slug=slug, tenant_settings=dict(raw_settings)
            )
            with tenant_context(tenant):
                admin = user_create(
                    email=admin_email,
                    password=admin_password,
                    full_name=admin_full_name,
                    is_staff=True,
                    is_superuser=True,
                )
                owner_grant(user=admin)
            event_record(
                type="tenant.created",
                source="tenants",
                data={"tenant_id": tenant.pk, "slug": slug, "schema_name": schema_name},
            )
            _audit(
                "tenant.created",
                tenant.pk,
                {
                    "name": tenant.name,
                    "slug": slug,
                    "schema_name": schema_name,
                    "settings": tenant.settings,
                    "domains": [hostname],
                },
            )
    except IntegrityError:
        # Lost a race with a concurrent provisioning of the same slug.
        raise ConflictError(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]}) from None
    return TenantProvisioned(
        tenant=tenant, domain=domain, admin=admin, generated_password=generated
    )


def tenant_rows_and_schema(
    *, name: str, slug: str, tenant_settings: dict[str, Any]
) -> tuple[Tenant, Domain]:
    """A new tenant's row, primary domain and schema (a copy of the template), with no user:
    what provisioning and an import (apps/tenants/exports.py) share. Call in a transaction,
    after the checks; the caller records the event and the audit row. IntegrityError when a
    concurrent provisioning took the slug."""
    tenant = Tenant(
        name=name.strip(),
        slug=slug,
        schema_name=schema_name_for(slug),
        settings=tenant_settings,
        is_active=True,
    )
    tenant.save()
    domain = Domain.objects.create(domain=tenant_hostname(slug), tenant=tenant, is_primary=True)
    schema_clone_from_template(tenant.schema_name)
    return tenant, domain


_UNSET: Any = object()


@transaction.atomic
def tenant_update(
    *,
    tenant: Tenant,
    name: str = _UNSET,
    is_active: bool = _UNSET,
    tenant_settings: Mapping[str, Any] = _UNSET,
    may_loosen_limits: bool = False,
) -> Tenant:
    """Change a tenant's name, active flag or settings; `is_active=False` deactivates it.

    A deactivated tenant's hosts answer 404 at once in this process and within
    TENANT_CACHE_LOCAL_SECONDS everywhere; its data is kept. A tenant pending deletion
    cannot be changed (409): restore it first.

    Settings that would relax a platform limit (a rate limit looser than the platform's)
    are refused unless `may_loosen_limits`: true only when a platform operator asks (the
    tenant's own owners may tighten them). `tenant` is the row as stored.

    Audited in the public schema (`tenant.updated`, `tenant.deactivated`,
    `tenant.activated`), and in the tenant's own schema too when its owners make the
    change from its host.
    """
    if tenant.is_public:
        raise ValidationError("The platform's own tenant cannot be changed here.")
    # Locked, so a deletion cannot slip in between this check and the save (a tenant
    # active again while pending deletion would be dropped while in use).
    stored = Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if stored is None:
        raise NotFoundError("Tenant not found")
    if stored.is_deleted:
        raise ConflictError(pending_deletion_message(stored))
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if name is not _UNSET:
        if not str(name).strip():
            errors["name"] = ["This field is required."]
        elif len(name) > 200:
            errors["name"] = ["At most 200 characters."]
        elif name.strip() != tenant.name:
            changes["name"] = name.strip()
    if is_active is not _UNSET and bool(is_active) != tenant.is_active:
        changes["is_active"] = bool(is_active)
    if tenant_settings is not _UNSET:
        if problems := settings_errors(tenant_settings):
            errors["settings"] = problems
        elif not may_loosen_limits and (
            problems := loosening_errors(tenant_settings, current=tenant.settings)
        ):
            errors["settings"] = problems
        elif dict(tenant_settings) != tenant.settings:
            changes["settings"] = dict(tenant_settings)
    if errors:
        raise ValidationError(details=errors)
    if not changes:
        return tenant
    before = {field: getattr(tenant, field) for field in changes}
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.save(update_fields=[*changes, "updated_at"])
    event_record(
        type="tenant.updated",
        source="tenants",
        data={"tenant_id": tenant.pk, "updated_fields": sorted(changes)},
    )
    diff = {field: [before[field], value] for field, value in changes.items()}
    if "is_active" in diff:
        _audit(
            "tenant.activated" if tenant.is_active else "tenant.deactivated",
            tenant.pk,
            {"is_active": diff.pop("is_active")},
        )
    if diff:
        _audit("tenant.updated", tenant.pk, diff)
        if current_schema() == tenant.schema_name:
            # The tenant's owners, on its own host: their own log shows it too.
            audit_record(action="tenant.updated", target=tenant, changes=diff)
    return tenant


# ------------------------------------------------------------------ deletion


def tenant_delete(*, tenant: Tenant, now: bool = False) -> Tenant | None:
    """Delete a tenant: it is deactivated at once (its hosts answer 404) and marked
    `deleted_at`; its schema, rows and domains are dropped TENANT_RETENTION_DAYS later by
    `tenants_purge`, or at once with `now` (nothing of it can be restored then).

    Returns the tenant while it is pending deletion, None once it is dropped. Deleting a
    tenant already pending deletion changes nothing (unless `now`). Audited in the public
    schema (`tenant.deleted`, then `tenant.purged` when dropped); those rows stay.

    With `now`, the cache is cleared of the tenant's entries first: if Redis is
    unreachable, nothing is dropped (503)."""
    _require_public_schema()
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
            _audit(
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
    _require_public_schema()
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
        _audit(
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
    _audit(
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
    _require_public_schema()
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


# ------------------------------------------------------------------ domains


@dataclass(frozen=True)
class DomainSpec:
    domain: str
    is_primary: bool = False


def domain_list_check(
    *, tenant: Tenant, domains: Sequence[DomainSpec]
) -> tuple[dict[str, bool], list[str]]:
    """The list as {host name: is primary}, and what is wrong with it (for forms to show)."""
    existing = set(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True))
    wanted: dict[str, bool] = {}
    problems: list[str] = []
    for spec in domains:
        hostname = spec.domain.strip().lower().rstrip(".")
        if hostname in wanted:
            problems.append(f"'{hostname}' is listed twice.")
            continue
        if hostname not in existing:  # the ones it has were checked when they were added
            problems += [
                f"{hostname or '(empty)'}: {p}" for p in hostname_errors(hostname, slug=tenant.slug)
            ]
        wanted[hostname] = bool(spec.is_primary)
    own = tenant_hostname(tenant.slug)
    if own not in wanted:
        problems.append(f"{own} is the tenant's own host: it cannot be removed.")
    if sum(wanted.values()) != 1:
        problems.append("Exactly one domain must be primary.")
    return wanted, problems


def tenant_domains_set(*, tenant: Tenant, domains: Sequence[DomainSpec]) -> list[Domain]:
    """Make the tenant's domains exactly `domains`: one of them primary, its own
    `<slug>.<base domain>` among them, each a host name no other tenant has.

    The primary domain is where links mailed to its users point. Audited in the public
    schema (`tenant.domains_changed`)."""
    if tenant.is_public:
        raise ValidationError("The platform's own tenant cannot be changed here.")
    if tenant.is_deleted:
        raise ConflictError(pending_deletion_message(tenant))
    wanted, problems = domain_list_check(tenant=tenant, domains=domains)
    if problems:
        raise ValidationError(details={"domains": problems})

    try:
        with transaction.atomic():
            current = {
                d.domain: d for d in Domain.objects.select_for_update().filter(tenant=tenant)
            }
            taken = list(
                Domain.objects.filter(domain__in=[h for h in wanted if h not in current])
                .exclude(tenant=tenant)
                .values_list("domain", flat=True)
            )
            if taken:
                raise ConflictError(
                    "A domain is in use by another tenant",
                    details={
                        "domains": [f"{h} is a domain of another tenant." for h in sorted(taken)]
                    },
                )
            before = sorted((d.domain, d.is_primary) for d in current.values())
            for hostname, domain in current.items():
                if hostname not in wanted:
                    domain.delete()
            # Demote first, then promote: at no point two primaries.
            for hostname, domain in current.items():
                if hostname in wanted and domain.is_primary and not wanted[hostname]:
                    domain.is_primary = False
                    domain.save(update_fields=["is_primary"])
            for hostname, is_primary in wanted.items():
                domain = current.get(hostname)
                if domain is None:
                    Domain.objects.create(tenant=tenant, domain=hostname, is_primary=is_primary)
                elif domain.is_primary != is_primary:
                    domain.is_primary = is_primary
                    domain.save(update_fields=["is_primary"])
            after = sorted(wanted.items())
            if before != after:
                _audit(
                    "tenant.domains_changed",
                    tenant.pk,
                    {
                        "domains": [
                            [f"{h}{' (primary)' if p else ''}" for h, p in before],
                            [f"{h}{' (primary)' if p else ''}" for h, p in after],
                        ]
                    },
                )
    except IntegrityError:
        # Lost a race with another tenant taking one of the names.
        raise ConflictError(
            "A domain is in use by another tenant", details={"domains": ["Try again."]}
        ) from None
    return list(Domain.objects.filter(tenant=tenant).order_by("-is_primary", "domain"))
