"""`migrate_schemas` that keeps the template schema current, first among tenant schemas.

Wired in through django-tenants' GET_EXECUTOR_FUNCTION setting, so plain
`manage.py migrate` / `migrate_schemas` (and the test runner, which calls
`migrate`) migrate: public, then the template, then every tenant. The template
goes before the tenants so that a tenant created while a deploy migrates is
cloned from the new state, and is then found up to date.
"""

from __future__ import annotations

from typing import Any

from django_tenants.migration_executors import get_executor as upstream_get_executor
from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import tenant_connection
from apps.tenants.schemas import (
    clone_function_ensure,
    template_schema_ensure,
    template_schema_name,
)


class _TemplateFirstMixin:
    options: dict[str, Any]

    def run_migrations(self, tenants: Any = None) -> None:
        schemas = list(tenants or [])
        tenant_phase = get_public_schema_name() not in schemas
        if tenant_phase and not self.options.get("schema_name"):
            tenant_connection().set_schema_to_public()
            template_schema_ensure()
            clone_function_ensure()
            template = template_schema_name()
            schemas = [template, *(s for s in schemas if s != template)]
        super().run_migrations(schemas)  # type: ignore[misc]


def get_executor(codename: str | None = None) -> type:
    base = upstream_get_executor(codename)
    return type(
        f"TemplateFirst{base.__name__}", (_TemplateFirstMixin, base), {"codename": base.codename}
    )
