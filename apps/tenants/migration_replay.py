"""Tenant migrations by replay: plan and collect the SQL once, on the template, then run that SQL
in every tenant schema that was at the template's state.

django-tenants' `migrate_schemas` runs Django's `migrate` once per schema: load the graph,
read the schema's `django_migrations`, render the project state, apply. That costs about
0.15 s per schema even when there is nothing to apply, so a deploy to thousands of tenants
takes minutes before any real work. Schemas copied from the template share its migration
state, so the plan Django would compute for each of them is the template's plan, and the
SQL it would run is what `sqlmigrate` prints for that plan (`MigrationLoader.collect_sql`).

1. The plan is computed on the template and its SQL collected there, before the template is
   migrated (collecting may introspect the schema it runs on).
2. The template is migrated by the normal path (pre/post_migrate and all).
3. Every tenant schema is fingerprinted (`_fingerprints`): its `django_migrations` rows, and
   the content types and permissions that `post_migrate` maintains. A schema with the
   template's fingerprint from before step 2 gets the SQL replayed (`migration_replay_pool`);
   one with the template's fingerprint from after step 2 has nothing to do (the normal path
   would apply nothing, and `post_migrate` would find every row it creates already there);
   any other schema (lagging, ahead, changed by hand) takes the normal path.

Plans the SQL cannot carry take the normal path for every schema: RunPython (and anything
else that does not reduce to SQL), a non-atomic migration (e.g. AddIndexConcurrently, which
cannot run in the one transaction a replayed schema gets), a RenameModel (contenttypes'
pre_migrate adds a Python step to rename the content type), and backwards plans (migrate_schemas
with an explicit target).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import RenameModel, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.signals import post_migrate, pre_migrate
from django_tenants.utils import get_tenant_database_alias

from apps.core.tenancy import TenantConnection
from apps.tenants.migration_fingerprints import fingerprint_of, fingerprints
from apps.tenants.migration_replay_pool import Plan, ReplayJob, replay_all

# The signal receivers whose effect on a schema follows from the rows the fingerprint covers
# (Django's: create_contenttypes and create_permissions only add what is missing; the pre_migrate
# one only acts on RenameModel, which is never replayed). With any other receiver connected,
# nothing is replayed: we could not tell what it would have done per schema.
_KNOWN_RECEIVERS = {
    "django.contrib.contenttypes.management.inject_rename_contenttypes_operations",
    "django.contrib.contenttypes.management.create_contenttypes",
    "django.contrib.auth.management.create_permissions",
}


@dataclass
class ReplayOutcome:
    replayed: list[str] = field(default_factory=list)
    normal: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_replayable: str | None = None  # why the whole plan took the normal path
    seconds: float = 0.0

    def summary(self) -> str:
        line = (
            f"Tenant migrations: {len(self.replayed)} replayed, {len(self.normal)} normal path, "
            f"{len(self.up_to_date)} up to date, {len(self.failed)} failed "
            f"in {self.seconds:.1f} s"
        )
        if self.not_replayable:
            line += f" (no replay: {self.not_replayable})"
        return line


def _database_connection() -> TenantConnection:
    return connections[get_tenant_database_alias()]  # type: ignore[return-value]


def _receiver_names(signal: Any) -> set[str]:
    names = set()
    for receiver in signal._live_receivers(None)[0]:
        names.add(f"{receiver.__module__}.{receiver.__qualname__}")
    return names


def _operations(operations: Iterable[Operation]) -> Iterable[Operation]:
    for operation in operations:
        yield operation
        if isinstance(operation, SeparateDatabaseAndState):
            yield from _operations(operation.database_operations)


def plan_not_replayable_reason(plan: Plan) -> str | None:
    """Why this plan cannot be replayed as SQL, or None when it can."""
    unknown = (_receiver_names(pre_migrate) | _receiver_names(post_migrate)) - _KNOWN_RECEIVERS
    if unknown:
        return f"migrate signal receivers with unknown effects: {', '.join(sorted(unknown))}"
    for migration, backwards in plan:
        label = f"{migration.app_label}.{migration.name}"
        if backwards:
            return f"{label} is unapplied (backwards plan)"
        if not migration.atomic:
            return f"{label} is not atomic"
        for operation in _operations(migration.operations):
            if not operation.reduces_to_sql:
                return f"{label} runs {type(operation).__name__}"
            if isinstance(operation, RenameModel):
                return f"{label} renames a model (content types follow in Python)"
    return None


def _template_plan(template: str) -> tuple[MigrationExecutor, Plan]:
    conn = _database_connection()
    # As django-tenants does: make sure the template's own django_migrations exists before
    # reading it, or the public one would be read through the search_path.
    conn.set_schema(template, include_public=False)
    MigrationRecorder(conn).ensure_schema()  # type: ignore[arg-type]
    conn.set_schema(template)
    executor = MigrationExecutor(conn)  # type: ignore[arg-type]
    return executor, executor.migration_plan(executor.loader.graph.leaf_nodes())


def tenants_migrate(
    *,
    template: str,
    schemas: list[str],
    migrate_normally: Callable[[list[str]], None],
    verbosity: int = 1,
    stdout: TextIO | None = None,
) -> ReplayOutcome:
    """Migrate the template by the normal path, then every schema in `schemas`: by replay
    where it was at the template's state, by the normal path otherwise."""
    out = stdout or sys.stdout
    started = time.perf_counter()
    outcome = ReplayOutcome()
    conn = _database_connection()

    if not schemas:  # a new database: nothing to replay into, nothing to collect
        migrate_normally([template])
        return outcome

    executor, plan = _template_plan(template)
    before = fingerprint_of(template)
    outcome.not_replayable = plan_not_replayable_reason(plan) if plan else None
    sql: list[str] = []
    if plan and outcome.not_replayable is None:
        sql = executor.loader.collect_sql(plan)  # type: ignore[attr-defined]  # not in the stubs
    pre_applied = set(executor.loader.applied_migrations)
    conn.set_schema_to_public()

    migrate_normally([template])

    conn.set_schema(template)
    after_applied = set(MigrationRecorder(conn).applied_migrations())  # type: ignore[arg-type]
    conn.set_schema_to_public()
    after = fingerprint_of(template)
    # What Django records for the plan: each migration, and what a squashed one replaces.
    planned = {(migration.app_label, migration.name) for migration, _ in plan} | {
        (app, name) for migration, _ in plan for app, name in migration.replaces
    }
    if plan and outcome.not_replayable is None and after_applied != pre_applied | planned:
        outcome.not_replayable = "the template did not end at the planned state"

    found_prints = fingerprints(schemas)
    to_replay: list[str] = []
    for schema in schemas:
        found = found_prints.get(schema)
        if found is not None and found == after:
            outcome.up_to_date.append(schema)
        elif found is not None and found == before and plan and outcome.not_replayable is None:
            to_replay.append(schema)
        else:
            outcome.normal.append(schema)

    if to_replay and before is not None and after is not None:
        emit = after.catalogue != before.catalogue
        job = ReplayJob(
            sql="\n".join(sql),
            applied=sorted(planned),
            before=before,
            plan=plan,
            emit_post_migrate=emit,
            post_migrate_apps=executor.loader.project_state().apps if emit else None,
            verbosity=verbosity,
        )
        workers = max(1, int(getattr(settings, "TENANT_MIGRATION_WORKERS", 2)))
        results = replay_all(job=job, schemas=to_replay, workers=workers)
        for schema in to_replay:
            result = results.get(schema, "the replay worker stopped before this schema")
            if result == "replayed":
                outcome.replayed.append(schema)
            elif result == "changed":
                outcome.normal.append(schema)  # migrated by someone else meanwhile
            else:
                outcome.failed[schema] = result
        for schema, error in outcome.failed.items():
            out.write(f"[replay:{schema}] FAILED, rolled back: {error}\n")

    if outcome.normal:
        migrate_normally(outcome.normal)
    outcome.seconds = time.perf_counter() - started
    if verbosity >= 1:
        out.write(outcome.summary() + "\n")
    return outcome
