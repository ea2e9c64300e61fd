"""PostgreSQL schema operations: the template schema and cloning it for a new tenant.

A new tenant's schema is a copy of `TENANT_TEMPLATE_SCHEMA`, which
`migrate_schemas` keeps at the current migration state (see `migration_executor.py`),
instead of replaying every migration for every new tenant: creating a tenant
costs the same with 10 migrations or 500. The copy replays DDL read from the
template once (`schema_copy.py`), so it also costs the same with 0 tenants or
10,000.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import connection
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import get_public_schema_name, quote_schema_name, schema_exists

from apps.core.tenancy import current_schema
from apps.tenants.schema_copy import template_copy


def template_schema_name() -> str:
    return str(settings.TENANT_TEMPLATE_SCHEMA)


def template_schema_ensure() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(template_schema_name())}")


_CLONE_FUNCTION_VERSION = hashlib.sha256(CLONE_SCHEMA_FUNCTION.encode()).hexdigest()[:16]


def clone_function_ensure() -> None:
    """Install django-tenants' clone_schema() PL/pgSQL function if it is missing or outdated.

    django-tenants' CloneSchema re-creates it (DROP TYPE ... CASCADE and all) on
    every call, which costs milliseconds and makes concurrent provisioning
    wait on each other's DDL. Installed once per database, tagged with a hash
    of its source, and re-installed only when django-tenants ships a new one.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'clone_schema' AND n.nspname = 'public'"
        )
        row = cursor.fetchone()
        if row and row[0] == _CLONE_FUNCTION_VERSION:
            return
        db_user = settings.DATABASES["default"].get("USER") or "postgres"
        cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=db_user))
        cursor.execute(
            f"COMMENT ON FUNCTION public.clone_schema(text, text, public.cloneparms[]) "
            f"IS '{_CLONE_FUNCTION_VERSION}'"
        )


def schema_clone_from_template(schema_name: str) -> None:
    """Create `schema_name` as a copy of the template: tables, indexes, constraints, sequences
    and its rows (migration records, content types, permissions). Runs in the caller's
    transaction, so a failure later in provisioning removes the schema too."""
    if current_schema() != get_public_schema_name():
        raise RuntimeError("Tenant schemas are created from the public schema.")
    template = template_schema_name()
    if not schema_exists(template):
        raise RuntimeError(
            f"The template schema '{template}' is missing: run `manage.py migrate_schemas`."
        )
    copy = template_copy(template)
    with connection.cursor() as cursor:
        if copy.script is not None:
            quoted = quote_schema_name(schema_name)
            cursor.execute(f"CREATE SCHEMA {quoted}")
            cursor.execute(copy.for_schema(quoted))
            return
    # The template holds objects the replay cannot copy: the slower, complete clone.
    clone_function_ensure()
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA')", [template, schema_name])
