"""A tenant schema's migration fingerprint: what decides whether the template's plan, replayed,
leaves it exactly as the normal path would.

Two parts, each an md5 computed in PostgreSQL: the schema's `django_migrations` rows (app,
name), and its content types and permissions, the rows Django's post_migrate receivers
(create_contenttypes, create_permissions) add when missing. Two schemas with equal
fingerprints get the same plan from Django, and post_migrate adds the same rows to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django_tenants.utils import get_tenant_database_alias, quote_schema_name

_BATCH = 200


@dataclass(frozen=True)
class Fingerprint:
    migrations: str  # md5 of the schema's django_migrations (app, name), sorted
    catalogue: str  # md5 of its content types and permissions


# One schema's row; SCHEMA is replaced by its quoted name (its name as a value is a parameter).
# COLLATE "C": the order, and so the digest, must not depend on the database's locale.
_FINGERPRINT_SELECT = """
SELECT %s::text,
  (SELECT md5(coalesce(string_agg(app || '.' || name, ','
          ORDER BY app COLLATE "C", name COLLATE "C"), ''))
     FROM SCHEMA.django_migrations),
  (SELECT md5(coalesce(string_agg(app_label || '.' || model, ','
          ORDER BY app_label COLLATE "C", model COLLATE "C"), ''))
     FROM SCHEMA.django_content_type)
  || (SELECT md5(coalesce(string_agg(ct.app_label || '.' || ct.model || '.' || p.codename, ','
          ORDER BY ct.app_label COLLATE "C", ct.model COLLATE "C", p.codename COLLATE "C"), ''))
     FROM SCHEMA.auth_permission p JOIN SCHEMA.django_content_type ct ON ct.id = p.content_type_id)
"""


def _fingerprint_select(schema: str) -> str:
    return _FINGERPRINT_SELECT.replace("SCHEMA", quote_schema_name(schema))


def fingerprints(schemas: list[str]) -> dict[str, Fingerprint]:
    """The fingerprint of each schema that has the three tables it covers (the others are left
    out: they take the normal path, which creates them)."""
    found: dict[str, Fingerprint] = {}
    with connections[get_tenant_database_alias()].cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) "
            "AND to_regclass(format('%%I.django_migrations', nspname)) IS NOT NULL "
            "AND to_regclass(format('%%I.django_content_type', nspname)) IS NOT NULL "
            "AND to_regclass(format('%%I.auth_permission', nspname)) IS NOT NULL",
            [schemas],
        )
        present = [row[0] for row in cursor.fetchall()]
        for start in range(0, len(present), _BATCH):
            batch = present[start : start + _BATCH]
            cursor.execute(" UNION ALL ".join(_fingerprint_select(s) for s in batch), batch)
            for schema, migrations, catalogue in cursor.fetchall():
                found[schema] = Fingerprint(migrations, catalogue)
    return found


def fingerprint_of(schema: str) -> Fingerprint | None:
    return fingerprints([schema]).get(schema)
