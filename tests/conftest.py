"""Shared fixtures: two real tenants (schemas) created once per session, clients per host.

Tests run against real PostgreSQL and Redis (embedded by `python3 run.py test`
or given by DATABASE_URL / REDIS_URL). Each test runs in a transaction that is
rolled back, DDL included, so a tenant a test creates vanishes with it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.tenancy import tenant_connection
from apps.tenants.models import Domain, Tenant
from apps.tenants.resolution import tenant_cache_clear_local
from apps.tenants.services import tenant_create
from tests.jobs import processes

# `--pgbouncer`: the tests through a real PgBouncer (tests/pgbouncer/plugin.py).
pytest_plugins = ["tests.pgbouncer.plugin"]

ADMIN_PASSWORD = "correct-horse-battery-staple"


@dataclass(frozen=True)
class TenantFixture:
    tenant: Tenant
    host: str
    admin_email: str

    @property
    def schema(self) -> str:
        return str(self.tenant.schema_name)

    def admin(self) -> User:
        with tenant_context(self.tenant):
            return User.objects.get(email=self.admin_email)

    def admin_client(self, user: User | None = None) -> Client:
        """A test client signed into this tenant's admin as `user` (default: its first
        admin, an owner)."""
        client = Client()
        with tenant_context(self.tenant):
            client.force_login(user or self.admin())
        return client


def _provision(slug: str) -> TenantFixture:
    result = tenant_create(
        name=f"Tenant {slug.title()}",
        slug=slug,
        admin_email=f"admin@{slug}.test",
        admin_password=ADMIN_PASSWORD,
    )
    return TenantFixture(result.tenant, result.domain.domain, result.admin.email)


@contextmanager
def committed_tenant(django_db_blocker: Any, prefix: str, name: str) -> Iterator[TenantFixture]:
    """A tenant of its own, committed (worker and web processes must see its rows) and
    dropped afterwards: schema, domain and tenant row."""
    slug = f"{prefix}{uuid.uuid4().hex[:6]}"
    with django_db_blocker.unblock():
        tenant_connection().set_schema_to_public()
        result = tenant_create(
            name=name, slug=slug, admin_email=f"admin@{slug}.test", admin_password=ADMIN_PASSWORD
        )
    fixture = TenantFixture(result.tenant, result.domain.domain, result.admin.email)
    try:
        yield fixture
    finally:
        with django_db_blocker.unblock():
            tenant_connection().set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{fixture.schema}" CASCADE')
            Domain.objects.filter(tenant_id=result.tenant.pk).delete()
            Tenant.objects.filter(pk=result.tenant.pk).delete()


@pytest.fixture(scope="session")
def session_tenants(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> dict[str, TenantFixture]:
    # Created once and committed: schema creation is the slow part of tenancy tests.
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        tenant_connection().set_schema_to_public()
        return {"a": _provision("alpha"), "b": _provision("beta")}


def _fresh(fixture: TenantFixture) -> TenantFixture:
    # A test's changes are rolled back in the database but not in this shared
    # object, so every test starts from the committed row.
    fixture.tenant.refresh_from_db()
    return fixture


@pytest.fixture
def tenant_a(session_tenants: dict[str, TenantFixture], db: None) -> TenantFixture:
    return _fresh(session_tenants["a"])


@pytest.fixture
def tenant_b(session_tenants: dict[str, TenantFixture], db: None) -> TenantFixture:
    return _fresh(session_tenants["b"])


@pytest.fixture(autouse=True)
def _public_schema_between_tests() -> Iterator[None]:
    # A request through the middleware leaves the connection on its tenant's
    # schema; every test starts (and ends) on public, like a fresh request.
    tenant_connection().set_schema_to_public()
    _forget_cached_state()
    yield
    tenant_connection().set_schema_to_public()
    _forget_cached_state()


class _HeldClock:
    """The time module, except that time() stays at the moment the test began."""

    def __init__(self, now: float) -> None:
        self._now = now

    def time(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        self._now = now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def _rate_windows_hold_still(monkeypatch: pytest.MonkeyPatch) -> _HeldClock:
    # The gateway counts in fixed windows aligned to the epoch: a test that makes
    # three requests against "2/m" would see its count restart if a window ended
    # between them. The brute-force limits (apps.accounts.limits) slide with the
    # clock. Their clocks stand still for the test; `rate_clock` moves them on.
    clock = _HeldClock(time.time())
    for module in ("apps.core.ratelimit", "apps.accounts.limits"):
        monkeypatch.setattr(f"{module}.time", clock)
    return clock


@pytest.fixture
def rate_clock(_rate_windows_hold_still: _HeldClock) -> _HeldClock:
    """The rate limits' held clock, for a test that moves it on instead of sleeping."""
    return _rate_windows_hold_still


def _forget_cached_state() -> None:
    # Redis is not rolled back with a test's transaction: cached tenants, cached
    # auth state and rate-limit counters would outlive the rows they describe.
    # Only keys under the test suite's own prefix are touched.
    tenant_cache_clear_local()
    redis = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for pattern in (f"{prefix}:shared:*", f"*{prefix}*rl:*", f"{prefix}:auth:*"):
        keys = list(redis.scan_iter(match=pattern, count=1000))
        if keys:
            redis.delete(*keys)


@pytest.fixture
def redis_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every command sent to Redis from now on, as the connection sends it
    (whichever client path sent it); a
    pipeline is one entry, `PIPELINE(A+B)`."""
    from redis.connection import AbstractConnection

    sent: list[str] = []
    send_command = AbstractConnection.send_command
    pack_commands = AbstractConnection.pack_commands

    def counted_send(conn: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        sent.append(str(args[0]).upper())
        send_command(conn, *args, **kwargs)

    def counted_pack(conn: AbstractConnection, commands: Any) -> Any:
        commands = list(commands)
        sent.append("PIPELINE(" + "+".join(str(c[0]).upper() for c in commands) + ")")
        return pack_commands(conn, commands)

    monkeypatch.setattr(AbstractConnection, "send_command", counted_send)
    monkeypatch.setattr(AbstractConnection, "pack_commands", counted_pack)
    return sent


@pytest.fixture
def client_ip() -> str:
    """A fresh client address per test, so rate-limit buckets never leak between tests."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture
def api(client_ip: str) -> APIClient:
    return APIClient(REMOTE_ADDR=client_ip, raise_request_exception=False)


@pytest.fixture
def operator(db: None) -> User:
    tenant_connection().set_schema_to_public()
    return User.objects.create_user(
        f"operator-{uuid.uuid4().hex[:8]}@localhost",
        ADMIN_PASSWORD,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def operator_api(client_ip: str, operator: User) -> APIClient:
    # A client of its own: the test client shares one cookie jar across hosts
    # (a browser would not), so an anonymous visit elsewhere must not end this session.
    client = APIClient(REMOTE_ADDR=client_ip, raise_request_exception=False)
    client.force_login(operator)
    return client


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery tasks run inline where they are sent (what a worker would do, minus the
    broker), their errors raised."""
    from platform_site.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


# ------------------------------------------------------------------ real processes


def worker_database_url() -> str:
    """The test database (not the one in DATABASE_URL), as a URL for another process."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@{port}/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker or web process: the test settings, the test database,
    the configured broker; `overrides` on top."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **overrides,
    }


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the processes the tests start write their logs (kept under .local when it exists)."""
    local = Path(os.environ.get("PLATFORM_LOCAL_DIR", processes.ROOT / ".local"))
    path = local / "test-processes" if local.is_dir() else tmp_path_factory.mktemp("logs")
    path.mkdir(parents=True, exist_ok=True)
    return path


WorkerFactory = Callable[..., AbstractContextManager[processes.Worker]]


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, log_dir: Path) -> WorkerFactory:
    """`with celery_worker(...) as worker:` a real `celery worker` process on a queue of its
    own, reading the test database through the configured broker (or `env`'s), started and
    consuming inside the block, stopped on leaving it.

    Arguments (all keyword): `queue` (default: a new `<prefix>-<random>` name), `env`
    (added to `process_env()`), `also_queues`, `imports` (modules with tasks only the
    tests define), `concurrency` (1)."""

    @contextmanager
    def running(
        *,
        queue: str | None = None,
        prefix: str = "test",
        env: dict[str, str] | None = None,
        also_queues: Sequence[str] = (),
        imports: Sequence[str] = (),
        concurrency: int = 1,
    ) -> Iterator[processes.Worker]:
        queue = queue or f"{prefix}-{uuid.uuid4().hex[:8]}"
        full_env = process_env(**(env or {}))
        worker = processes.Worker(
            queue,
            processes.worker(
                name=f"worker-{queue}", queue=queue, env=full_env, log_dir=log_dir,
                concurrency=concurrency, also_queues=also_queues, imports=imports,
            ),
            full_env["CELERY_BROKER_URL"],
        )  # fmt: skip
        try:
            worker.start()
            yield worker
        finally:
            worker.stop()

    return running
