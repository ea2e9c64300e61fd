"""`--pgbouncer`: the tests' database connections go through a real PgBouncer.

The test database is created, migrated and dropped on PostgreSQL directly (pytest-django's
`django_db_setup`): PgBouncer keeps server connections to the database open, so DROP
DATABASE through it would be refused, and CREATE DATABASE cannot run in a transaction.
Between the two, the connection settings point at a PgBouncer started in front of the same
server (devtools.pgbouncer), in the pool mode DATABASE_POOLER names; every database name
passes through, so the tests reach the test database by its own name.

    DATABASE_POOLER=transaction python3 run.py test --pgbouncer tests/accounts ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.pgbouncer import PgBouncer, pgbouncer_start


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pgbouncer",
        action="store_true",
        help="connect through a PgBouncer (binary from PATH) in the pool mode DATABASE_POOLER names",
    )


def upstream_of(settings_dict: dict[str, Any]) -> tuple[str, int | None]:
    """Where the server in `settings_dict` listens: a host or a socket folder, and a port."""
    host = settings_dict["HOST"] or settings_dict.get("OPTIONS", {}).get("host", "")
    port = int(settings_dict["PORT"]) if settings_dict.get("PORT") else None
    return str(host or "127.0.0.1"), port


@pytest.fixture(scope="session")
def pgbouncer_session(django_db_setup: None, request: pytest.FixtureRequest) -> PgBouncer | None:
    """The PgBouncer the tests connect through, or None without `--pgbouncer`."""
    return getattr(request.config, "_platform_pgbouncer", None)


@pytest.fixture
def postgres_upstream(request: pytest.FixtureRequest) -> tuple[str, int | None]:
    """PostgreSQL itself (host or socket folder, port), even while the tests go through
    PgBouncer: a test's own pooler must not sit behind the session's."""
    from django.db import connection

    direct = getattr(request.config, "_platform_postgres", None)
    return direct or upstream_of(connection.settings_dict)


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None, django_db_blocker: Any, request: pytest.FixtureRequest
) -> Iterator[None]:
    if not request.config.getoption("--pgbouncer"):
        yield
        return
    from django.conf import settings
    from django.db import connections

    pool_mode = settings.DATABASE_POOLER
    if pool_mode not in ("session", "transaction"):
        raise pytest.UsageError("--pgbouncer needs DATABASE_POOLER=session or transaction")
    db = connections["default"]
    host, port = upstream_of(db.settings_dict)
    bouncer = pgbouncer_start(
        upstream_host=host, upstream_port=port, user=db.settings_dict["USER"] or "postgres",
        pool_mode=pool_mode, pool_size=10,
    )  # fmt: skip
    sys.stderr.write(
        f"\n[pgbouncer] tests through PgBouncer ({pool_mode}) on port {bouncer.port}\n"
    )
    direct = {"HOST": db.settings_dict["HOST"], "PORT": db.settings_dict["PORT"]}
    with django_db_blocker.unblock():
        connections.close_all()
    for settings_dict in {
        id(d): d for d in (db.settings_dict, settings.DATABASES["default"])
    }.values():
        settings_dict.update(HOST=bouncer.host, PORT=str(bouncer.port))
    request.config._platform_pgbouncer = bouncer  # type: ignore[attr-defined]
    request.config._platform_postgres = (host, port)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            connections.close_all()
        for settings_dict in {
            id(d): d for d in (db.settings_dict, settings.DATABASES["default"])
        }.values():
            settings_dict.update(direct)
        request.config._platform_pgbouncer = None  # type: ignore[attr-defined]
        request.config._platform_postgres = None  # type: ignore[attr-defined]
        bouncer.stop()
