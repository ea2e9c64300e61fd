from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.core.errors import NotFoundError
from apps.tenants.models import Domain, Tenant


def _customers() -> QuerySet[Tenant]:
    return Tenant.objects.customers().prefetch_related(
        Prefetch("domains", queryset=Domain.objects.order_by("-is_primary", "domain"))
    )


def tenant_list(
    *, search: str | None = None, is_active: bool | None = None, deleted: bool = False
) -> QuerySet[Tenant]:
    """Live tenants, or with `deleted` those pending deletion (restorable until dropped)."""
    qs = _customers().filter(deleted_at__isnull=not deleted)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("name", "id")


def tenant_get(*, tenant_id: int) -> Tenant:
    """A tenant, live or pending deletion (never the platform's own row)."""
    tenant = _customers().filter(pk=tenant_id).first()
    if tenant is None:
        raise NotFoundError("Tenant not found")
    return tenant
