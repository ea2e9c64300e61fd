"""PostgreSQL and Redis failing as they fail in production, for the outage tests.

The test's own database connection stays usable (it holds the test's transaction): the
queries of the code under test fail instead, with the errors psycopg and redis-py raise
when the server is down, through Django's and django-redis' own error handling.
"""

from __future__ import annotations

import socket
from typing import Any

import psycopg
import pytest
from django.db import connections

# How the database fails: every query of the code under test gets...
REFUSED = "refused"  # ...psycopg's OperationalError connecting to a port nobody listens on
DROPPED = "dropped"  # ...psycopg's OperationalError from a connection the server terminated
CLOSED = "closed"  # ...psycopg's InterfaceError from a cursor already closed
DATABASE_FAILURES = (REFUSED, DROPPED, CLOSED)


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _second_connection() -> psycopg.Connection[Any]:
    params = connections["default"].get_connection_params()
    wanted = {
        k: v for k, v in params.items() if k in ("dbname", "host", "port", "user", "password")
    }
    return psycopg.connect(**wanted, autocommit=True)


def _failing_query(how: str) -> Any:
    """A callable that raises, every time, what psycopg raises for `how`."""
    if how == REFUSED:
        port = closed_port()

        def refused() -> None:
            psycopg.connect(host="127.0.0.1", port=port, dbname="platform", connect_timeout=2)

        return refused
    if how == DROPPED:
        victim = _second_connection()
        with connections["default"].cursor() as cursor:
            # Waits (up to 5 s) until the backend has really gone.
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [victim.info.backend_pid])
        return lambda: victim.execute("SELECT 1")
    if how == CLOSED:
        closed = _second_connection().cursor()
        closed.close()
        return lambda: closed.execute("SELECT 1")
    raise ValueError(how)


def fail_database(monkeypatch: pytest.MonkeyPatch, how: str = REFUSED) -> None:
    """From now on every query made through Django fails as `how` says: the cursor Django
    asks its connection for raises psycopg's error, inside Django's error wrapper (which
    turns it into django.db's OperationalError / InterfaceError, as for a real outage)."""
    query = _failing_query(how)

    def create_cursor(name: str | None = None) -> Any:
        query()
        raise AssertionError("the failing query did not fail")

    monkeypatch.setattr(connections["default"], "create_cursor", create_cursor)


def fail_redis(settings: Any) -> str:
    """Point both caches (tenant data, and the shared one) at a port nobody listens on: every
    Redis command of the code under test gets redis-py's ConnectionError. Returns the URL."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = {
        name: {**config, "LOCATION": url} for name, config in settings.CACHES.items()
    }
    return url


def signed_in(
    api: Any, tenant: Any, *, warm: tuple[str, ...] = ("/api/v1/users/me", "/api/v1/users")
) -> dict[str, str]:
    """The tenant admin's token pair, with everything a request reads cached (the tenant, the
    signing keys, the user's and the session's state, the grants), as on a warm worker."""
    from tests.conftest import ADMIN_PASSWORD

    response = api.post(
        "/api/v1/auth/login",
        {"email": tenant.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=tenant.host,
    )
    assert response.status_code == 200, response.content
    tokens = dict(response.json()["data"])
    for path in warm:
        answer = api.get(
            path, HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"
        )
        assert answer.status_code == 200, answer.content
    return tokens
