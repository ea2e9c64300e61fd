"""The embedded default: PostgreSQL and Redis from wheels, stopped cleanly, data kept across starts."""

from __future__ import annotations

from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from devtools.services import services_start


@pytest.fixture
def no_service_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def _pid_alive(pid: int) -> bool:
    # A zombie has exited; some container inits are slow to reap them.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.usefixtures("no_service_urls")
def test_second_start_reuses_the_data_and_stop_stops_both(tmp_path: Path) -> None:
    local = tmp_path / "local"
    services = services_start(local)
    try:
        assert services.started == ["postgresql", "redis"]
        with psycopg.connect(services.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        redis.Redis.from_url(services.env["REDIS_URL"]).set("kept", "still here")
        pg_pid = int((local / "pgdata" / "postmaster.pid").read_text().split()[0])
    finally:
        services.stop()
    assert not _pid_alive(pg_pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(services.env["DATABASE_URL"], connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(services.env["REDIS_URL"], socket_connect_timeout=0.5).ping()

    again = services_start(local)
    try:
        with psycopg.connect(again.env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        assert redis.Redis.from_url(again.env["REDIS_URL"]).get("kept") == b"still here"
    finally:
        again.stop()


@pytest.mark.usefixtures("no_service_urls")
def test_a_second_run_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    services = services_start(tmp_path / "local")
    try:
        with pytest.raises(RuntimeError, match="in use by another"):
            services_start(tmp_path / "local")
    finally:
        services.stop()


def test_given_urls_win_over_embedded_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example/0")
    services = services_start(tmp_path / "local")
    assert services.env == {} and services.started == []
    assert not (tmp_path / "local").exists()
