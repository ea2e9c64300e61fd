"""django-tenants' PostgreSQL backend, without a `SET search_path` per request.

django-tenants forgets the connection's search_path whenever a tenant is set,
and its middleware sets one on every request, so with persistent connections
each request that touches the database pays a `SET search_path` round trip even
when the schema has not changed. Here the remembered value survives a
`set_tenant` to the same schema; it is still dropped on rollback, on close and
whenever the schema really changes, exactly as upstream does.
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        remembered: list[str] | None = getattr(self, "search_path_set_schemas", None)
        unchanged = (
            remembered is not None
            and self.schema_name == tenant.schema_name
            and self.include_public_schema == include_public
        )
        super().set_tenant(tenant, include_public)
        if unchanged:
            self.search_path_set_schemas = remembered
