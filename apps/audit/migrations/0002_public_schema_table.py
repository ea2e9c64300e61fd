"""The audit table in the public schema, for databases migrated before it was there.

apps.audit became a shared app (platform operators' changes are audited in the
public schema, as tenant users' are in theirs). A database migrated before that
has 0001 recorded as applied in public without its table, since Django records a
migration even where the router skipped its operations: this creates the table
there if it is missing. Everywhere else the table exists and this does nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def table_ensure(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("audit", "AuditEvent")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        existing = connection.introspection.table_names(cursor)
    if model._meta.db_table not in existing:
        schema_editor.create_model(model)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(table_ensure, migrations.RunPython.noop)]
