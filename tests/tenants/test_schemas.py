"""New tenants are clones of a template schema that migrations keep current."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.tenants.schemas import template_schema_name


def tables_of(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
        return {row[0] for row in cursor.fetchall()}


def applied_migrations_of(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')  # noqa: S608
        return set(cursor.fetchall())


@pytest.mark.django_db
def test_template_schema_is_migrated_with_the_tenant_apps(tenant_a) -> None:
    template = tables_of(template_schema_name())
    assert {"accounts_user", "core_outboxevent", "django_session", "django_migrations"} <= template
    assert "tenants_tenant" not in template  # shared apps stay in public


@pytest.mark.django_db
def test_a_new_tenant_has_exactly_the_template_tables_and_migration_state(tenant_a) -> None:
    assert tables_of(tenant_a.schema) == tables_of(template_schema_name())
    assert applied_migrations_of(tenant_a.schema) == applied_migrations_of(template_schema_name())


@pytest.mark.django_db
def test_migrate_schemas_finds_nothing_left_to_apply_in_a_clone(tenant_a) -> None:
    from django.db.migrations.executor import MigrationExecutor
    from django_tenants.utils import tenant_context

    with tenant_context(tenant_a.tenant):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert plan == []


@pytest.mark.django_db
def test_template_is_not_a_tenant(api) -> None:
    from apps.tenants.models import Tenant

    assert not Tenant.objects.filter(schema_name=template_schema_name()).exists()
    assert api.get("/api/v1/info", HTTP_HOST="tenant-template.localhost").status_code == 404
