"""The replay of a collected migration plan into tenant schemas, by a few threads at once.

Each thread has its own database connection (Django's connections are per thread) and takes
schemas from a shared queue. A schema is one transaction: the search_path set for that
transaction only (`set_config(..., true)`, so nothing leaks to the session or to a
transaction-pooling PgBouncer's next client), its fingerprint checked again under that
transaction (it may have been migrated since it was read), the statements, the
`django_migrations` rows, and post_migrate where it has something to add. Any error rolls
the whole schema back; the other schemas go on.

Threads rather than processes: a thread spends nearly all its time waiting for PostgreSQL
(the DDL runs there), psycopg releases the GIL while it waits, and there is nothing to fork
or re-import. DDL takes an ACCESS EXCLUSIVE lock on the table it changes; a lock_timeout
keeps a replay from queueing behind a long transaction (and every request behind it) for
longer than that: it is retried a few times, then reported as failed.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, connections, transaction
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_tenants.utils import get_tenant_database_alias, quote_schema_name

from apps.tenants.migration_fingerprints import Fingerprint, fingerprint_of

Plan = list[tuple[Migration, bool]]

_LOCK_NOT_AVAILABLE = "55P03"
_LOCK_RETRIES = 3

# ContentType's cache is per process and keyed by database alias, not schema: two threads
# running post_migrate in two schemas would read each other's content type ids.
_post_migrate_lock = threading.Lock()


@dataclass(frozen=True)
class ReplayJob:
    """What every replayed schema gets: the SQL, the migration rows, and whether post_migrate
    must run there too (when it changed the template's content types or permissions)."""

    sql: str
    applied: list[tuple[str, str]]
    before: Fingerprint
    plan: Plan
    emit_post_migrate: bool
    post_migrate_apps: Any = None
    verbosity: int = 1


class _SchemaChanged(Exception):
    pass


def _lock_timeout_ms() -> int:
    return int(float(getattr(settings, "TENANT_MIGRATION_LOCK_TIMEOUT", 5)) * 1000)


def _replay_once(job: ReplayJob, schema: str) -> None:
    alias = get_tenant_database_alias()
    conn = connections[alias]
    conn.set_schema(schema)  # type: ignore[attr-defined]
    with transaction.atomic(using=alias), conn.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('search_path', %s, true), set_config('lock_timeout', %s, true)",
            [f"{quote_schema_name(schema)}, public", f"{_lock_timeout_ms()}ms"],
        )
        if fingerprint_of(schema) != job.before:
            raise _SchemaChanged
        if job.sql.strip():
            # Several statements in one string: psycopg sends them in one round trip (simple
            # query protocol), as long as it is never asked to prepare them, which it would
            # after DB_PREPARE_THRESHOLD runs of the same text on one connection.
            cursor.cursor.execute(job.sql, prepare=False)
        now = timezone.now()
        recorder = MigrationRecorder(conn)
        recorder.migration_qs.bulk_create(
            recorder.Migration(app=app, name=name, applied=now) for app, name in job.applied
        )
        if job.emit_post_migrate:
            with _post_migrate_lock:
                ContentType.objects.clear_cache()
                try:
                    emit_post_migrate_signal(
                        job.verbosity, False, alias, apps=job.post_migrate_apps, plan=job.plan
                    )
                finally:
                    ContentType.objects.clear_cache()


def _replay_schema(job: ReplayJob, schema: str) -> str:
    """'replayed', 'changed' (not at the template's old state any more), or the error."""
    for attempt in range(_LOCK_RETRIES + 1):
        try:
            _replay_once(job, schema)
            return "replayed"
        except _SchemaChanged:
            return "changed"
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                if attempt < _LOCK_RETRIES:
                    time.sleep(0.5 * (attempt + 1))
                    continue
            return f"{type(exc).__name__}: {exc}".strip()
    return "lock_timeout"  # not reached


def _worker(job: ReplayJob, todo: queue.SimpleQueue[str], results: dict[str, str]) -> None:
    try:
        while True:
            try:
                schema = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[schema] = _replay_schema(job, schema)
            except Exception as exc:  # noqa: BLE001 - one schema's surprise must not stop the rest
                results[schema] = f"{type(exc).__name__}: {exc}"
    finally:
        connections.close_all()  # this thread's own connections


def replay_all(*, job: ReplayJob, schemas: list[str], workers: int) -> dict[str, str]:
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for schema in schemas:
        todo.put(schema)
    results: dict[str, str] = {}
    threads = [
        threading.Thread(target=_worker, args=(job, todo, results), name=f"migration-replay-{i}")
        for i in range(min(workers, len(schemas)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
