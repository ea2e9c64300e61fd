"""Copy the template schema by replaying DDL read from it once, instead of re-reading it per tenant.

django-tenants' `clone_schema()` (pg-clone-schema) rediscovers the template
from the system catalogs on every call, with queries that scan every schema's
objects, so provisioning slows down as tenants accumulate. Here the template
is read once per migration state and turned into a script:

1. every table, `CREATE TABLE dest.t (LIKE template.t INCLUDING ALL EXCLUDING INDEXES)`
   (columns, defaults, identity, NOT NULL and CHECK constraints, comments);
2. the template's rows (migration records, content types, permissions);
3. identity sequences moved past those rows;
4. primary keys, unique and exclusion constraints under their own names;
5. the other indexes, from `pg_get_indexdef`, under their own names;
6. foreign keys, pointing into the new schema;
7. triggers on those tables (their functions live outside the template: in
   public, such as accounts' user counts).

Names are kept exactly (later migrations drop indexes and constraints by
name). Replaying it costs the same however many schemas the database holds.

The script covers tables and what hangs off them. If the template ever holds
anything else (a view, a function, a free-standing sequence, a type, a
policy), `template_copy_sql` returns None and the caller falls back to
`clone_schema()`, which copies those too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.backends.utils import CursorWrapper

_DEST = "__platform_clone_destination__"


@dataclass(frozen=True)
class TemplateCopy:
    state: tuple[object, ...]  # the template's migration state the script was read at
    script: str | None  # None: the template holds objects this script cannot copy

    def for_schema(self, quoted_schema: str) -> str:
        if self.script is None:
            raise ValueError("This template cannot be copied by replay; use clone_schema().")
        return self.script.replace(_DEST, quoted_schema)


_cached: dict[str, TemplateCopy] = {}


def _migration_state(cursor: CursorWrapper, template_q: str) -> tuple[object, ...]:
    cursor.execute(f"SELECT count(*), max(id), max(applied) FROM {template_q}.django_migrations")  # noqa: S608
    row = cursor.fetchone()
    return tuple(row) if row else ()


def _only_tables_and_their_parts(cursor: CursorWrapper, template: str) -> bool:
    cursor.execute(
        """
        SELECT
          (SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = n.oid AND c.relkind NOT IN ('r', 'i', 'S'))
        + (SELECT count(*) FROM pg_class s
            WHERE s.relnamespace = n.oid AND s.relkind = 'S'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.objid = s.oid AND d.classid = 'pg_class'::regclass
                                 AND d.deptype = 'i'))
        + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid)
        + (SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
            WHERE c.relnamespace = n.oid)
        + (SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
            WHERE c.relnamespace = n.oid)
        + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid
            AND NOT (t.typtype = 'c' AND t.typrelid <> 0)
            AND NOT (t.typcategory = 'A' AND EXISTS (
                SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c' AND e.typrelid <> 0)))
        FROM pg_namespace n WHERE n.nspname = %s
        """,
        [template],
    )
    row = cursor.fetchone()
    return bool(row) and row[0] == 0


def _read_script(cursor: CursorWrapper, template: str, template_q: str) -> str:
    quote = connection.ops.quote_name
    dest = _DEST
    statements: list[str] = []

    cursor.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace "
        "AND c.relkind = 'r' ORDER BY c.relname",
        [template],
    )
    tables = [str(row[0]) for row in cursor.fetchall()]
    for table in tables:
        statements.append(
            f"CREATE TABLE {dest}.{quote(table)} "
            f"(LIKE {template_q}.{quote(table)} INCLUDING ALL EXCLUDING INDEXES)"
        )

    for table in tables:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {template_q}.{quote(table)})")  # noqa: S608
        row = cursor.fetchone()
        if row and row[0]:
            statements.append(
                f"INSERT INTO {dest}.{quote(table)} OVERRIDING SYSTEM VALUE "  # noqa: S608
                f"SELECT * FROM {template_q}.{quote(table)}"
            )

    # Identity sequences: LIKE makes new ones (named by the same rules as the
    # template's) but not always of the same type; give them the template's settings.
    cursor.execute(
        "SELECT c.relname, a.attname, s.relname, format_type(q.seqtypid, NULL), q.seqstart, "
        "q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_depend d ON d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'i' "
        "AND d.classid = 'pg_class'::regclass "
        "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_sequence q ON q.seqrelid = s.oid "
        "WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' "
        "AND a.attidentity <> '' AND NOT a.attisdropped ORDER BY 1, 2",
        [template],
    )
    identities = cursor.fetchall()
    for _table, _column, sequence, type_, start, step, low, high, cache, cycle in identities:
        statements.append(
            f"ALTER SEQUENCE {dest}.{quote(sequence)} AS {type_} MINVALUE {int(low)} "
            f"MAXVALUE {int(high)} START WITH {int(start)} RESTART WITH {int(start)} "
            f"INCREMENT BY {int(step)} CACHE {int(cache)} {'CYCLE' if cycle else 'NO CYCLE'}"
        )
    for table, column, *_ in identities:
        target = f"{dest}.{quote(table)}"
        statements.append(
            f"SELECT setval(pg_get_serial_sequence('{target}', '{column}'), max({quote(column)})) "  # noqa: S608
            f"FROM {target} HAVING max({quote(column)}) IS NOT NULL"
        )

    # Read from the public schema: the template is not on the search path, so the
    # catalog functions spell its tables schema-qualified, which is what is rewritten.
    cursor.execute("SELECT quote_ident(%s)", [template])  # quoted the way the catalog spells it
    row = cursor.fetchone()
    prefix = f"{row[0] if row else template_q}."
    cursor.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace "
        "AND k.contype IN ('p', 'u', 'x') ORDER BY k.contype, 1, 2",
        [template],
    )
    for table, name, definition in cursor.fetchall():
        statements.append(
            f"ALTER TABLE {dest}.{quote(table)} ADD CONSTRAINT {quote(name)} {definition}"
        )
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid "
        "WHERE ic.relnamespace = %s::regnamespace "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "                AND k.contype IN ('p', 'u', 'x')) "
        "ORDER BY ic.relname",
        [template],
    )
    for (definition,) in cursor.fetchall():
        statements.append(str(definition).replace(f" ON {prefix}", f" ON {dest}.", 1))
    cursor.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace "
        "AND k.contype = 'f' ORDER BY 1, 2",
        [template],
    )
    for table, name, definition in cursor.fetchall():
        definition = str(definition).replace(f"REFERENCES {prefix}", f"REFERENCES {dest}.")
        statements.append(
            f"ALTER TABLE {dest}.{quote(table)} ADD CONSTRAINT {quote(name)} {definition}"
        )
    # Last, so the rows copied above fire nothing (the template's counts are its rows').
    # Functions in schemas on the search path are spelt unqualified: the copy runs on
    # public (schema_clone_from_template refuses to run elsewhere).
    cursor.execute(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal ORDER BY 1",
        [template],
    )
    for (definition,) in cursor.fetchall():
        statements.append(str(definition).replace(f" ON {prefix}", f" ON {dest}.", 1))
    return ";\n".join(statements) + ";"


def template_copy(template: str) -> TemplateCopy:
    """The copy script for the template's current migration state (read once per state)."""
    template_q = connection.ops.quote_name(template)
    with connection.cursor() as cursor:
        state = _migration_state(cursor, template_q)
        cached = _cached.get(template)
        if cached is not None and cached.state == state:
            return cached
        script = (
            _read_script(cursor, template, template_q)
            if _only_tables_and_their_parts(cursor, template)
            else None
        )
    copy = TemplateCopy(state=state, script=script)
    _cached[template] = copy
    return copy
