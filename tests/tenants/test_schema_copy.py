"""The replayed copy of the template is the template: same tables, columns, names, rows."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.tenants import schema_copy
from apps.tenants.schemas import schema_clone_from_template, template_schema_name


def footprint(schema: str) -> dict[str, set]:
    """Everything a migration may rely on, with the schema's own name taken out."""

    def rows(sql: str) -> set:
        with connection.cursor() as cursor:
            cursor.execute(sql, [schema])
            return {
                tuple(str(v).replace(f"{schema}.", "S.") for v in row) for row in cursor.fetchall()
            }

    return {
        "columns": rows(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "a.attidentity, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 "
            "AND NOT a.attisdropped"
        ),
        "constraints": rows(
            "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace"
        ),
        "indexes": rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"),
        "sequences": rows(
            "SELECT sequencename, data_type, start_value, increment_by FROM pg_sequences "
            "WHERE schemaname = %s"
        ),
        "triggers": rows(
            "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal"
        ),
        "rows": _row_counts(schema),
    }


def _row_counts(schema: str) -> set:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
            [schema],
        )
        counts = set()
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')  # noqa: S608
            counts.add((table, cursor.fetchone()[0]))
        return counts


@pytest.mark.django_db
def test_copy_matches_the_template_exactly() -> None:
    schema_clone_from_template("copy_check")
    template = footprint(template_schema_name())
    copy = footprint("copy_check")
    for part in template:
        assert copy[part] == template[part], part
    assert template["indexes"] and template["constraints"] and template["rows"]
    assert {name for _, name, _ in template["triggers"]} >= {"accounts_user_count_insert"}
    assert schema_copy.template_copy(template_schema_name()).script is not None  # no fallback


@pytest.mark.django_db
def test_copy_script_is_read_once_per_migration_state(django_assert_max_num_queries) -> None:
    schema_copy._cached.clear()
    schema_copy.template_copy(template_schema_name())
    with django_assert_max_num_queries(1):  # only the migration-state check
        schema_copy.template_copy(template_schema_name())


@pytest.mark.django_db
def test_falls_back_to_clone_schema_when_the_template_holds_more_than_tables() -> None:
    template = template_schema_name()
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE VIEW "{template}".users_view AS SELECT id FROM "{template}".accounts_user'  # noqa: S608
        )
    schema_copy._cached.clear()
    try:
        assert schema_copy.template_copy(template).script is None
        schema_clone_from_template("fallback_check")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_views WHERE schemaname = 'fallback_check' AND viewname = 'users_view'"
            )
            assert cursor.fetchone()[0] == 1
    finally:
        schema_copy._cached.clear()
