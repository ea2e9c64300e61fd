"""The transaction-pooling backend on PostgreSQL directly (no PgBouncer needed), and the
settings that choose it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import NotSupportedError, connection, connections

from apps.core.dbbackend.base import DatabaseWrapper
from tests.conftest import TenantFixture
from tests.core.test_settings import run_manage


@pytest.fixture
def pooled(postgres_upstream: tuple[str, int | None]) -> Iterator[DatabaseWrapper]:
    host, port = postgres_upstream
    settings_dict = {
        **connection.settings_dict,
        "HOST": host,
        "PORT": str(port or ""),
        "POOLER": "transaction",
        "OPTIONS": {
            key: value
            for key, value in connection.settings_dict["OPTIONS"].items()
            if key not in ("server_side_binding", "prepare_threshold", "host")
        },
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pooled_direct")
    connections["pooled_direct"] = wrapper
    yield wrapper
    wrapper.close()
    del connections["pooled_direct"]


def test_a_statement_outside_a_transaction_runs_in_its_tenant_and_leaves_no_path(
    pooled: DatabaseWrapper, tenant_a: TenantFixture
) -> None:
    pooled.set_tenant(tenant_a.tenant)
    with pooled.cursor() as cursor:
        cursor.execute(
            "SELECT current_schema(), count(*) FROM accounts_user WHERE email = %s",
            [tenant_a.admin_email],
        )
        in_statement = cursor.fetchone()
    assert pooled.connection is not None
    left_behind = pooled.connection.execute("SHOW search_path").fetchone()

    assert in_statement == (tenant_a.schema, 1)
    assert left_behind == ('"$user", public',)


def test_concurrent_index_builds_are_refused_behind_transaction_pooling(
    pooled: DatabaseWrapper, tenant_a: TenantFixture
) -> None:
    pooled.set_tenant(tenant_a.tenant)
    with pytest.raises(NotSupportedError, match="CONCURRENTLY"), pooled.cursor() as cursor:
        cursor.execute("CREATE INDEX CONCURRENTLY never_built ON accounts_user (email)")


def test_server_side_cursors_are_off_in_transaction_mode(pooled: DatabaseWrapper) -> None:
    with pytest.raises(NotSupportedError):
        pooled.create_cursor(name="named")


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"DATABASE_POOLER": "statement"}, "DATABASE_POOLER must be none, session or transaction"),
        (
            {"DATABASE_POOLER": "transaction", "DB_PREPARED_STATEMENTS": "true"},
            "DB_PREPARED_STATEMENTS=true does not work with DATABASE_POOLER=transaction",
        ),
    ],
)
def test_pooler_settings_that_cannot_work_are_refused(
    changes: dict[str, str | None], complaint: str
) -> None:
    result = run_manage(changes, "check")
    assert result.returncode != 0
    assert complaint in result.stderr


def test_transaction_mode_turns_prepared_statements_and_server_side_cursors_off() -> None:
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['POOLER'], d['DISABLE_SERVER_SIDE_CURSORS'], d.get('OPTIONS', {}).get('server_side_binding'))"
    )
    result = run_manage({"DATABASE_POOLER": "transaction"}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["transaction", "True", "None"]
