"""With `--pgbouncer`, the suite's queries really go through PgBouncer in the configured mode."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from devtools.pgbouncer import PgBouncer
from tests.conftest import TenantFixture


def test_the_tests_reach_postgresql_through_pgbouncer(
    pgbouncer_session: PgBouncer | None, tenant_a: TenantFixture, api: APIClient
) -> None:
    if pgbouncer_session is None:
        pytest.skip("run with --pgbouncer")
    user = connection.settings_dict["USER"] or "postgres"
    database = connection.settings_dict["NAME"]

    # A request on a tenant host, inside the test's transaction: that transaction holds a
    # server connection of PgBouncer's pool for the test database while it lasts.
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    with psycopg.connect(pgbouncer_session.admin_url(user), autocommit=True) as admin:
        cursor = admin.execute("SHOW POOLS")
        names = [column.name for column in cursor.description or []]
        pools: list[dict[str, Any]] = [
            dict(zip(names, row, strict=True)) for row in cursor.fetchall()
        ]
    ours = [pool for pool in pools if pool["database"] == database]

    assert response.status_code == 200
    assert connection.settings_dict["PORT"] == str(pgbouncer_session.port)
    assert [pool["pool_mode"] for pool in ours] == [settings.DATABASE_POOLER]
    assert ours[0]["cl_active"] >= 1
    assert ours[0]["sv_active"] >= 1
