"""A running `run.py` records its services; another one finds and uses them, or says in one
line why it cannot. The servers here are the test run's own (DATABASE_URL / REDIS_URL)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools.services import (
    RECORD_NAME,
    Services,
    services_record,
    services_running,
)

ROOT = Path(__file__).resolve().parents[2]
# Not for these tests' own sake: the suite's autouse Redis clean-up may read the database
# when this module's first test opens the session's first Redis connection.
pytestmark = pytest.mark.django_db


@pytest.fixture
def listening() -> Iterator[str]:
    """A real server socket, as the recorded Redis would be."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()


@pytest.fixture
def other_process() -> Iterator[int]:
    """A live process that is not this one: the run that owns the record."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _write_record(local: Path, *, pid: int, env: dict[str, str], web_url: str | None) -> None:
    local.mkdir(parents=True, exist_ok=True)
    (local / RECORD_NAME).write_text(
        json.dumps({"pid": pid, "command": "up", "env": env, "web_url": web_url})
    )


def test_the_record_is_private_found_by_others_and_removed_by_its_owner(
    tmp_path: Path, listening: str
) -> None:
    services = Services(env={"REDIS_URL": listening})

    remove = services_record(tmp_path, services, command="up", web_url="http://localhost:8000/")

    record = tmp_path / RECORD_NAME
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert json.loads(record.read_text())["pid"] == os.getpid()
    assert services_running(tmp_path) is None  # our own record is not "another run"
    remove()
    assert not record.exists()


def test_a_live_run_whose_servers_answer_is_found(
    tmp_path: Path, listening: str, other_process: int
) -> None:
    _write_record(
        tmp_path, pid=other_process, env={"REDIS_URL": listening}, web_url="http://localhost:9/"
    )

    running = services_running(tmp_path)

    assert running is not None
    assert running.pid == other_process
    assert running.env == {"REDIS_URL": listening}
    assert running.web_url == "http://localhost:9/"


def test_a_killed_runs_record_is_stale_and_removed(tmp_path: Path, listening: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(tmp_path, pid=dead.pid, env={"REDIS_URL": listening}, web_url=None)

    assert services_running(tmp_path) is None
    assert not (tmp_path / RECORD_NAME).exists()


def test_a_live_pid_whose_servers_are_gone_is_stale(tmp_path: Path, other_process: int) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _write_record(
        tmp_path, pid=other_process, env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"}, web_url=None
    )

    assert services_running(tmp_path) is None


def test_an_unreadable_record_is_stale(tmp_path: Path) -> None:
    (tmp_path / RECORD_NAME).write_text("{half a rec")

    assert services_running(tmp_path) is None
    assert not (tmp_path / RECORD_NAME).exists()


# ------------------------------------------------------------------ run.py itself


def _run_py(local: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["PLATFORM_LOCAL_DIR"] = str(local)
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_py_manage_uses_the_recorded_services_of_a_running_platform(
    tmp_path: Path, other_process: int
) -> None:
    # The test run's own PostgreSQL and Redis stand in for the running platform's.
    recorded = {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}
    _write_record(tmp_path, pid=other_process, env=recorded, web_url="http://localhost:8123/")
    script = (
        "from django.conf import settings; from django.db import connection; "
        "connection.ensure_connection(); "
        "print('db', connection.settings_dict['NAME'], 'port', settings.PLATFORM_URL_PORT)"
    )

    result = _run_py(tmp_path, "manage", "shell", "-c", script)

    assert result.returncode == 0, result.stderr
    assert f"using the services of the running `run.py up` (pid {other_process})" in result.stdout
    database = urlsplit(recorded["DATABASE_URL"]).path.strip("/")
    assert f"db {database} port 8123" in result.stdout
    assert not (tmp_path / "pgdata").exists() and not (tmp_path / "redis").exists()


def test_a_second_run_py_up_says_in_one_line_that_the_platform_runs(
    tmp_path: Path, listening: str, other_process: int
) -> None:
    _write_record(
        tmp_path, pid=other_process, env={"REDIS_URL": listening}, web_url="http://localhost:8123/"
    )

    result = _run_py(tmp_path, "up", "--port", "8124")

    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        f"[run] the platform already runs at http://localhost:8123/ (`run.py up`, pid "
        f"{other_process}); stop it first, or give this one its own PLATFORM_LOCAL_DIR"
    ]
    assert "Traceback" not in result.stderr


def test_a_busy_folder_without_a_record_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # Another run holds the Redis folder but left no record (an older run.py, say).
    (tmp_path / "redis").mkdir(parents=True)
    with (tmp_path / "redis" / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

        result = _run_py(tmp_path, "manage", "help")

    assert result.returncode == 1
    assert "is in use by another `run.py`" in result.stdout
    assert "Traceback" not in result.stderr
