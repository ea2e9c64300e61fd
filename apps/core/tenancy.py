"""Typed access to what django-tenants adds to the database connection.

django-tenants' backend gives `connection` a schema name and tenant setters
that Django's type stubs cannot know about; going through here keeps the
rest of the code type-checked instead of sprinkling ignores.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from django.db import connection
from django_tenants.utils import get_public_schema_name, get_tenant_model


class TenantConnection(Protocol):
    schema_name: str
    tenant: Any

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None: ...

    def set_schema(self, schema_name: str, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


def tenant_connection() -> TenantConnection:
    return cast(TenantConnection, connection)


def current_schema() -> str:
    return tenant_connection().schema_name


def public_schema() -> str:
    return str(get_public_schema_name())


def in_public_schema() -> bool:
    return current_schema() == public_schema()


def tenant_schema_names(*, active_only: bool = True) -> list[str]:
    """Customer schemas (not public) in creation order; only the active, undeleted ones
    (those background work runs for) unless told otherwise. Through django-tenants'
    TENANT_MODEL, so the layers below apps.tenants need not import it."""
    tenants = get_tenant_model().objects.customers()
    if active_only:
        tenants = tenants.runnable()
    return list(tenants.order_by("id").values_list("schema_name", flat=True))


def tenant_schemas_after(after_id: int, limit: int) -> list[tuple[int, str]]:
    """The next `limit` active, undeleted customer schemas after tenant id `after_id`, in
    creation order, with their ids: a walk over every tenant, one page at a time."""
    tenants = get_tenant_model().objects.customers().runnable().filter(id__gt=after_id)
    return list(tenants.order_by("id").values_list("id", "schema_name")[:limit])
