"""Behind PgBouncer in transaction mode with ONE server connection, two clients on two
tenants take turns on that connection: every statement must see its own tenant's rows.

The same turns with the session-level `SET search_path` (DATABASE_POOLER=none, the
behaviour before transaction mode) are shown to read the other tenant's rows, so these
tests are known to catch the leak they guard against."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections

from apps.core.dbbackend.base import DatabaseWrapper
from devtools.pgbouncer import PgBouncer, pgbouncer_binary, pgbouncer_start
from tests.conftest import TenantFixture

pytestmark = pytest.mark.skipif(
    pgbouncer_binary() is None, reason="pgbouncer not installed (apt-get install pgbouncer)"
)


@pytest.fixture
def one_server_connection(
    tenant_a: TenantFixture, tenant_b: TenantFixture, postgres_upstream: tuple[str, int | None]
) -> Iterator[PgBouncer]:
    host, port = postgres_upstream
    bouncer = pgbouncer_start(
        upstream_host=host, upstream_port=port, user=connection.settings_dict["USER"] or "postgres",
        pool_mode="transaction", pool_size=1,
    )  # fmt: skip
    yield bouncer
    bouncer.stop()


@pytest.fixture
def clients(one_server_connection: PgBouncer) -> Iterator[Any]:
    opened: list[DatabaseWrapper] = []

    def client(pooler: str) -> DatabaseWrapper:
        settings_dict = {
            **connection.settings_dict,
            "HOST": one_server_connection.host,
            "PORT": str(one_server_connection.port),
            "POOLER": pooler,
            "CONN_MAX_AGE": None,
            # Without prepared statements in both modes, so only the search_path differs.
            "OPTIONS": {
                key: value
                for key, value in connection.settings_dict["OPTIONS"].items()
                if key not in ("server_side_binding", "prepare_threshold", "host")
            },
        }
        alias = f"pooled_{len(opened)}"
        wrapper = DatabaseWrapper(settings_dict, alias=alias)
        connections[alias] = wrapper  # Django's connection signals look it up by alias
        opened.append(wrapper)
        return wrapper

    yield client
    for wrapper in opened:
        wrapper.close()
        del connections[wrapper.alias]


def _emails(client: DatabaseWrapper) -> set[str]:
    with client.cursor() as cursor:
        cursor.execute("SELECT email FROM accounts_user")
        return {row[0] for row in cursor.fetchall()}


def _domains(emails: set[str]) -> set[str]:
    return {email.rsplit("@", 1)[1] for email in emails}


def test_alternating_tenants_each_see_their_own_rows(
    clients: Any, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    alpha, beta = clients("transaction"), clients("transaction")
    alpha.set_tenant(tenant_a.tenant)
    beta.set_tenant(tenant_b.tenant)

    seen = []
    for _ in range(3):
        seen.append(("alpha", _domains(_emails(alpha))))
        seen.append(("beta", _domains(_emails(beta))))

    assert seen == [("alpha", {"alpha.test"}), ("beta", {"beta.test"})] * 3


def test_session_level_set_leaks_the_other_tenants_rows(
    clients: Any, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    # The detector: the old behaviour (one SET per connection, remembered) on the same turns.
    alpha, beta = clients("none"), clients("none")
    alpha.set_tenant(tenant_a.tenant)
    beta.set_tenant(tenant_b.tenant)

    first = _domains(_emails(alpha))
    _emails(beta)  # sets beta's path on the one server connection, session-wide
    second = _domains(_emails(alpha))

    assert first == {"alpha.test"}
    assert second == {"beta.test"}, "alpha's client read beta's users: the leak"


def test_transactions_carry_the_path_through_savepoints_and_isolation_levels(
    clients: Any, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    alpha, beta = clients("transaction"), clients("transaction")
    alpha.set_tenant(tenant_a.tenant)
    beta.set_tenant(tenant_b.tenant)
    _emails(beta)  # leaves nothing behind on the server connection

    alpha.set_autocommit(False)
    with alpha.cursor() as cursor:
        # Must come first in its transaction: the path is SET LOCAL, not a SELECT before it.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    in_alpha = _domains(_emails(alpha))
    savepoint = alpha.savepoint()
    alpha.set_tenant(tenant_b.tenant)
    switched = _domains(_emails(alpha))
    alpha.savepoint_rollback(savepoint)  # reverts the SET LOCAL made after the savepoint
    after_rollback = _domains(_emails(alpha))
    alpha.set_tenant(tenant_a.tenant)
    back = _domains(_emails(alpha))
    alpha.commit()
    alpha.set_autocommit(True)

    assert (in_alpha, switched, after_rollback, back) == (
        {"alpha.test"},
        {"beta.test"},
        {"beta.test"},
        {"alpha.test"},
    )
    assert _domains(_emails(beta)) == {"beta.test"}


def test_the_server_connection_keeps_no_tenant_path(clients: Any, tenant_a: TenantFixture) -> None:
    alpha, other = clients("transaction"), clients("transaction")
    alpha.set_tenant(tenant_a.tenant)
    _emails(alpha)
    alpha.set_autocommit(False)
    _emails(alpha)
    alpha.commit()
    alpha.set_autocommit(True)

    # A client that sends no path of its own (raw psycopg, no tenant) finds the default.
    other.ensure_connection()
    assert other.connection is not None
    path = other.connection.execute("SHOW search_path").fetchone()

    assert path == ('"$user", public',)


def test_executemany_writes_into_its_own_tenant(
    clients: Any, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    alpha, beta = clients("transaction"), clients("transaction")
    alpha.set_tenant(tenant_a.tenant)
    beta.set_tenant(tenant_b.tenant)
    _emails(beta)
    # A table in both tenants' schemas: the rows must land in alpha's only.
    marker = "pgbouncer-executemany"
    try:
        with alpha.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rbac_role (name, description, permissions, created_at, updated_at)"
                " VALUES (%s, '', '{}', now(), now())",
                [(f"{marker}-1",), (f"{marker}-2",)],
            )
        with alpha.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rbac_role WHERE name LIKE %s", [f"{marker}%"])
            in_alpha = cursor.fetchone()[0]
        with beta.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rbac_role WHERE name LIKE %s", [f"{marker}%"])
            in_beta = cursor.fetchone()[0]
    finally:
        with alpha.cursor() as cursor:
            cursor.execute("DELETE FROM rbac_role WHERE name LIKE %s", [f"{marker}%"])

    assert (in_alpha, in_beta) == (2, 0)
