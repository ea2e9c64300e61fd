"""Creating a tenant (its row, domain, schema and first admin, all or nothing) and changing
it. Deleting and restoring it: `lifecycle.py`; its domains: `domains.py`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context

from apps.accounts.models import User, normalize_email
from apps.accounts.services.users import user_create
from apps.audit.services import audit_record
from apps.core.errors import ConflictError, NotFoundError, ValidationError
from apps.core.tenancy import current_schema
from apps.invitations.signup import signup_role_errors
from apps.jobs.events import event_record
from apps.mfa.policy import settings_stamped
from apps.rbac.services import owner_grant
from apps.tenants.domains import tenant_hostname
from apps.tenants.lifecycle import pending_deletion_message
from apps.tenants.models import Domain, Tenant
from apps.tenants.public_schema import require_public_schema, tenant_audit
from apps.tenants.schemas import schema_clone_from_template
from apps.tenants.validators import (
    loosening_errors,
    schema_name_for,
    settings_errors,
    slug_errors,
)

SLUG_TAKEN = "A tenant with this slug already exists"


@dataclass(frozen=True)
class TenantProvisioned:
    tenant: Tenant
    domain: Domain
    admin: User
    # Set only when the platform generated the admin's password; shown once, never stored in clear.
    generated_password: str | None


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
    require_public_schema()
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
                name=name,
                slug=slug,
                tenant_settings=settings_stamped(raw_settings, old=None, now=timezone.now()),
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
            tenant_audit(
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
    what provisioning and an import (apps/tenants/imports.py) share. Call in a transaction,
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


def settings_merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`current` with the top-level keys of `changes`: each one given replaces the stored
    value whole (`mfa` is one policy, validated as one), null removes it, and a key not
    given is kept. What a PATCH of `settings` means (RFC 7396's merge, one level deep)."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _signup_role_errors(tenant: Tenant, tenant_settings: Mapping[str, Any]) -> list[str]:
    """The sign-up's default role must be one of the tenant's roles (read in its schema)."""
    if not isinstance(tenant_settings.get("signup"), dict):
        return []
    with tenant_context(tenant):
        return signup_role_errors(tenant_settings["signup"])


@transaction.atomic
def tenant_update(
    *,
    tenant: Tenant,
    name: str = _UNSET,
    is_active: bool = _UNSET,
    tenant_settings: Mapping[str, Any] = _UNSET,
    settings_changes: Mapping[str, Any] = _UNSET,
    may_loosen_limits: bool = False,
) -> Tenant:
    """Change a tenant's name, active flag or settings; `is_active=False` deactivates it.

    `tenant_settings` replaces the settings whole (the admin's form edits the whole
    document); `settings_changes` changes only the top-level keys it names
    (`settings_merged`: null removes one), merged into the row as locked, so two changes
    of different keys made at once both stay.

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
    if settings_changes is not _UNSET:
        tenant.settings = stored.settings
        # Anything but an object is left for `settings_errors` to refuse, with the rest.
        tenant_settings = (
            settings_merged(stored.settings, settings_changes)
            if isinstance(settings_changes, Mapping)
            else settings_changes
        )
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
        elif problems := _signup_role_errors(tenant, tenant_settings):
            errors["settings"] = problems
        elif (
            stamped := settings_stamped(tenant_settings, old=tenant.settings, now=timezone.now())
        ) != tenant.settings:
            changes["settings"] = stamped
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
        tenant_audit(
            "tenant.activated" if tenant.is_active else "tenant.deactivated",
            tenant.pk,
            {"is_active": diff.pop("is_active")},
        )
    if diff:
        tenant_audit("tenant.updated", tenant.pk, diff)
        if current_schema() == tenant.schema_name:
            # The tenant's owners, on its own host: their own log shows it too.
            audit_record(action="tenant.updated", target=tenant, changes=diff)
    return tenant
