"""migrate_schemas replays the template's plan into the tenants at its state, and leaves every
schema exactly as Django's migrate per schema would (apps/tenants/migration_replay.py).

These tests migrate real schemas backwards and forwards, committed (the replay's threads have
connections of their own): every write goes through a thread of its own, outside the test's
transaction (`committed`). They use tenants of their own and put everything back at the end. The migration rolled back is accounts' last (two additive columns); a later accounts
migration is rolled back and replayed with it.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.test import override_settings

import apps.accounts.migrations
from apps.core.tenancy import tenant_connection
from apps.tenants.models import Domain, Tenant
from apps.tenants.schemas import template_schema_name
from apps.tenants.services import tenant_create

ACCOUNTS_BEFORE = "0005_session_user_single_index"  # accounts' last migration is applied after it

pytestmark = pytest.mark.django_db


def committed(work: Callable[[], Any]) -> Any:
    """Run `work` in a thread with its own connection: what it writes is committed, and seen at
    once by the test's own connection (read committed) and by the replay's threads."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, raised there
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def execute_committed(sql: str, params: list[Any] | None = None) -> None:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    committed(run)


@contextmanager
def _cheap_password_hashing() -> Iterator[None]:
    # Setup only: a tenant's first admin needs a password, not a 100 ms Argon2 hash.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def tenants_provision(prefix: str, count: int) -> list[str]:
    schemas = []
    tenant_connection().set_schema_to_public()
    with _cheap_password_hashing():
        for index in range(count):
            slug = f"{prefix}{index}"
            result = tenant_create(
                name=f"Replay {slug}",
                slug=slug,
                admin_email=f"admin@{slug}.test",
                admin_password="correct-horse-battery-staple",
            )
            schemas.append(str(result.tenant.schema_name))
    return schemas


def tenants_drop(schemas: list[str]) -> None:
    tenant_connection().set_schema_to_public()
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    tenants = Tenant.objects.filter(schema_name__in=schemas)
    Domain.objects.filter(tenant__in=tenants).delete()
    tenants.delete()


def migrate(*args: str, verbosity: int = 1) -> None:
    committed(
        lambda: call_command("migrate_schemas", *args, interactive=False, verbosity=verbosity)
    )


ADDITIVE_MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "{leaf}")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="replay_note",
            field=models.CharField(max_length=64, null=True, blank=True),
        ),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["replay_note"], name="accounts_user_replay_note"),
        ),
    ]
"""


def accounts_leaf() -> str:
    source = Path(apps.accounts.migrations.__file__).parent
    return max(file.stem for file in source.glob("[0-9][0-9][0-9][0-9]_*.py"))


@contextmanager
def additive_migration(directory: Path) -> Iterator[str]:
    """accounts' migrations plus one more, the example of an additive migration: a nullable
    column and an index on users. Every schema it reached is rolled back at the end."""
    source = Path(apps.accounts.migrations.__file__).parent
    package = directory / "replay_accounts_migrations"
    package.mkdir()
    for file in source.glob("*.py"):
        shutil.copy(file, package / file.name)
    leaf = accounts_leaf()
    (package / "9001_user_replay_note.py").write_text(ADDITIVE_MIGRATION.format(leaf=leaf))
    sys.path.insert(0, str(directory))
    try:
        with override_settings(MIGRATION_MODULES={"accounts": package.name}):
            try:
                yield "9001_user_replay_note"
            finally:
                migrate("--tenant", "accounts", leaf, verbosity=0)
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m.startswith(package.name)]:
            del sys.modules[name]


def migrate_back(schema: str, app: str = "accounts", target: str = ACCOUNTS_BEFORE) -> None:
    migrate("--schema", schema, app, target, verbosity=0)


def summary_of(output: str) -> dict[str, int]:
    found = re.search(r"(\d+) replayed, (\d+) normal path, (\d+) up to date, (\d+) failed", output)
    assert found, output
    keys = ("replayed", "normal", "up_to_date", "failed")
    return dict(zip(keys, map(int, found.groups()), strict=True))


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def shape_of(schema: str) -> dict[str, set[tuple[Any, ...]]]:
    """Columns, indexes, constraints and migration records, with the schema's own name taken
    out of the definitions so that two schemas compare."""

    def plain(rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        return {
            tuple(
                value.replace(f'"{schema}".', "S.").replace(f"{schema}.", "S.")
                if isinstance(value, str)
                else value
                for value in row
            )
            for row in rows
        }

    return {
        "columns": plain(
            _rows(
                "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                "character_maximum_length, is_identity FROM information_schema.columns "
                "WHERE table_schema = %s",
                [schema],
            )
        ),
        "indexes": plain(
            _rows(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                [schema],
            )
        ),
        "constraints": plain(
            _rows(
                "SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid) "
                "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
                [schema],
            )
        ),
        "migrations": set(
            _rows(f'SELECT app, name FROM "{schema}".django_migrations', [])  # noqa: S608
        ),
    }


def columns_of(schema: str, table: str) -> set[str]:
    rows = _rows(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        [schema, table],
    )
    return {row[0] for row in rows}


def has_migration(schema: str, app: str, name: str) -> bool:
    return (app, name) in shape_of(schema)["migrations"]


@pytest.fixture(scope="module")
def replay_schemas(django_db_setup: None, django_db_blocker: Any) -> Iterator[list[str]]:
    with django_db_blocker.unblock():
        schemas = tenants_provision("replay", 5)
    yield schemas
    with django_db_blocker.unblock():
        # Whatever a test left behind: every schema forward again, by the normal path.
        migrate("--tenant", "--no-replay")
        tenants_drop(schemas)


@pytest.fixture
def unblocked(replay_schemas: list[str], django_db_blocker: Any) -> Iterator[list[str]]:
    with django_db_blocker.unblock():  # for the threads' connections
        yield replay_schemas


def test_replay_leaves_every_schema_as_the_normal_path_does(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_schema_name()
    replayed, reference, lagging = unblocked[:3], unblocked[3], unblocked[4]
    for schema in [template, *replayed, reference]:
        migrate_back(schema)
    migrate_back(lagging, target="0004_usercount")  # one accounts migration further back
    assert "pending_email" not in columns_of(replayed[0], "accounts_user")
    # The reference: forward by Django's migrate in that one schema.
    migrate("--schema", reference)
    capsys.readouterr()

    migrate("--tenant")

    counts = summary_of(capsys.readouterr().out)
    assert counts["replayed"] == len(replayed)
    assert counts["normal"] == 1  # the lagging schema
    assert counts["failed"] == 0
    assert counts["up_to_date"] >= 1  # the reference, and the session's tenants
    expected = shape_of(reference)
    assert {"pending_email", "pending_email_requested_at"} <= columns_of(reference, "accounts_user")
    for schema in [template, *replayed, lagging]:
        assert shape_of(schema) == expected, schema


def test_a_runpython_migration_in_the_plan_sends_every_schema_the_normal_way(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_schema_name()
    tenant = unblocked[0]
    for schema in (template, tenant):
        migrate_back(schema, app="rbac", target="0001_initial")  # 0002 is RunPython
    assert not has_migration(tenant, "rbac", "0002_system_roles")
    capsys.readouterr()

    migrate("--tenant")

    output = capsys.readouterr().out
    counts = summary_of(output)
    assert counts["replayed"] == 0
    assert counts["normal"] == 1
    assert "rbac.0002_system_roles runs RunPython" in output
    assert has_migration(tenant, "rbac", "0002_system_roles")
    assert shape_of(tenant) == shape_of(unblocked[1])


def test_a_failure_rolls_that_schema_back_whole_and_fails_the_command(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_schema_name()
    good, broken = unblocked[0], unblocked[1]
    for schema in (template, good, broken):
        migrate_back(schema)
    # The second of the migration's two columns is already there: its ADD COLUMN fails after
    # the first one has run.
    execute_committed(
        f'ALTER TABLE "{broken}".accounts_user '
        "ADD COLUMN pending_email_requested_at timestamptz NULL"
    )
    capsys.readouterr()

    with pytest.raises(CommandError, match=broken):
        migrate("--tenant")

    output = capsys.readouterr().out
    assert f"[replay:{broken}] FAILED, rolled back" in output
    assert summary_of(output)["failed"] == 1
    assert "pending_email" not in columns_of(broken, "accounts_user")  # the first column too
    assert not has_migration(broken, "accounts", "0006_user_pending_email")
    assert has_migration(good, "accounts", "0006_user_pending_email")
    execute_committed(
        f'ALTER TABLE "{broken}".accounts_user DROP COLUMN pending_email_requested_at'
    )
    migrate("--schema", broken)
    assert shape_of(broken) == shape_of(good)


def test_post_migrate_runs_in_replayed_schemas_when_it_changed_the_template(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_schema_name()
    tenant = unblocked[2]
    for schema in (template, tenant):
        migrate_back(schema)
        execute_committed(
            f'DELETE FROM "{schema}".auth_permission WHERE codename = %s',  # noqa: S608
            ["view_user"],
        )
    capsys.readouterr()

    migrate("--tenant")

    assert summary_of(capsys.readouterr().out)["replayed"] == 1
    rows = _rows(
        f'SELECT count(*) FROM "{tenant}".auth_permission WHERE codename = %s',  # noqa: S608
        ["view_user"],
    )
    assert rows == [(1,)]  # post_migrate put it back, as in the template
    assert shape_of(tenant) == shape_of(unblocked[3])


def test_no_replay_flag_migrates_every_schema_the_normal_way(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = unblocked[0]
    for schema in (template_schema_name(), tenant):
        migrate_back(schema)
    capsys.readouterr()

    migrate("--tenant", "--no-replay")

    output = capsys.readouterr().out
    assert "replayed" not in output
    assert has_migration(tenant, "accounts", "0006_user_pending_email")


def test_a_new_column_and_index_are_replayed_as_the_normal_path_makes_them(
    unblocked: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, replayed = unblocked[0], unblocked[1:]
    with additive_migration(tmp_path) as name:
        migrate("--schema", reference)
        capsys.readouterr()

        migrate("--tenant")

        counts = summary_of(capsys.readouterr().out)
        expected = shape_of(reference)
        shapes = {schema: shape_of(schema) for schema in [template_schema_name(), *replayed]}
    assert counts["replayed"] >= len(replayed)  # and the session's tenants
    assert counts["normal"] == counts["failed"] == 0
    assert ("accounts", name) in expected["migrations"]
    assert any("accounts_user_replay_note" in index for index in map(str, expected["indexes"]))
    for schema, shape in shapes.items():
        assert shape == expected, schema
    assert "replay_note" not in columns_of(reference, "accounts_user")  # rolled back after


def test_a_schema_whose_table_stays_locked_is_given_up_and_the_others_go_on(
    unblocked: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_schema_name()
    locked, free = unblocked[0], unblocked[1]
    for schema in (template, locked, free):
        migrate_back(schema)
    # A long transaction reading the tenant's users: the replay's ALTER TABLE would queue
    # behind it, and every request to that table behind the ALTER TABLE.
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{locked}".accounts_user IN ACCESS SHARE MODE')
            holding.set()
            release.wait(120)

    holder = threading.Thread(target=lambda: committed(hold))
    holder.start()
    assert holding.wait(30)
    capsys.readouterr()
    try:
        with override_settings(TENANT_MIGRATION_LOCK_TIMEOUT=1):
            with pytest.raises(CommandError, match=locked):
                migrate("--tenant")
    finally:
        release.set()
        holder.join()

    output = capsys.readouterr().out
    assert "lock timeout" in output
    assert summary_of(output)["failed"] == 1
    assert "pending_email" not in columns_of(locked, "accounts_user")
    assert "pending_email" in columns_of(free, "accounts_user")
    migrate("--tenant")  # once the lock is gone: the schema now lags, the normal path takes it
    assert shape_of(locked) == shape_of(free)
