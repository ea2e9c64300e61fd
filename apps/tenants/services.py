from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django_tenants.utils import get_public_schema_name, schema_exists, tenant_context

from apps.accounts.models import User, normalize_email
from apps.accounts.services.users import user_create
from apps.core.errors import ConflictError, ValidationError
from apps.core.events import event_record
from apps.core.tenancy import current_schema
from apps.rbac.services import owner_grant
from apps.tenants.models import Domain, Tenant
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


def tenant_hostname(slug: str) -> str:
    return f"{slug}.{settings.PLATFORM_BASE_DOMAIN}"


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
    if current_schema() != get_public_schema_name():
        raise RuntimeError("Tenants are provisioned from the public schema.")
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
    if (
        Tenant.objects.filter(slug=slug).exists()
        or Domain.objects.filter(domain=hostname).exists()
        or schema_exists(schema_name, case_sensitive=False)
    ):
        raise ConflictError(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]})

    generated = None
    if admin_password is None:
        generated = admin_password = secrets.token_urlsafe(18)

    try:
        with transaction.atomic():
            tenant = Tenant(
                name=name.strip(),
                slug=slug,
                schema_name=schema_name,
                settings=dict(raw_settings),
                is_active=True,
            )
            tenant.save()
            domain = Domain.objects.create(domain=hostname, tenant=tenant, is_primary=True)
            schema_clone_from_template(schema_name)
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
    except IntegrityError:
        # Lost a race with a concurrent provisioning of the same slug.
        raise ConflictError(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]}) from None
    return TenantProvisioned(
        tenant=tenant, domain=domain, admin=admin, generated_password=generated
    )


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
    TENANT_CACHE_LOCAL_SECONDS everywhere; its data is kept.

    Settings that would relax a platform limit (a rate limit looser than the platform's)
    are refused unless `may_loosen_limits`: true only when a platform operator asks (the
    tenant's own owners may tighten them). `tenant` is the row as stored.
    """
    if tenant.is_public:
        raise ValidationError("The platform's own tenant cannot be changed here.")
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
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.save(update_fields=[*changes, "updated_at"])
    event_record(
        type="tenant.updated",
        source="tenants",
        data={"tenant_id": tenant.pk, "updated_fields": sorted(changes)},
    )
    return tenant
