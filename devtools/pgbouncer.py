"""PgBouncer in front of a PostgreSQL, for tests: `pgbouncer_start(...)` runs the `pgbouncer`
binary from PATH (Debian's package: `apt-get install pgbouncer`) on a free port, with a
generated ini and userlist, and returns how to reach it and how to stop it.

The upstream server is the test server, which trusts local connections, so PgBouncer
trusts its clients too (auth_type=trust; the user must still be in the userlist). Every
database name a client asks for is passed through to the same name upstream (the `*`
entry), so the test database pytest-django creates is reachable under its own name.

PgBouncer refuses to run as root; as root it is started as the unprivileged user that
owns the embedded PostgreSQL (pgserver's `pgserver`, else `nobody`), which can reach that
server's socket folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.services import free_port

POOL_MODES = ("session", "transaction", "statement")


class PgBouncerError(RuntimeError):
    """PgBouncer is missing or did not start."""


@dataclass
class PgBouncer:
    host: str
    port: int
    pool_mode: str
    workdir: Path
    process: subprocess.Popen[bytes]

    def admin_url(self, user: str) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/pgbouncer"

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "pgbouncer.log").read_text()
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PgBouncer's immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (
            path
            for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
            if os.access(path, os.X_OK)
        ),
        None,
    )


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("pgserver", "postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PgBouncerError("running as root and no unprivileged user to run PgBouncer as")


def pgbouncer_start(
    *,
    upstream_host: str,
    upstream_port: int | None,
    user: str,
    pool_mode: str = "transaction",
    pool_size: int = 20,
    max_client_conn: int = 200,
) -> PgBouncer:
    """Start PgBouncer in front of `upstream_host` (a hostname, or a socket folder starting
    with /) and wait until it accepts connections."""
    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool_mode must be one of {POOL_MODES}")
    binary = pgbouncer_binary()
    if binary is None:
        raise PgBouncerError(
            "pgbouncer is not installed (Debian/Ubuntu: apt-get install pgbouncer)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = free_port()
    upstream = f"host={upstream_host}" + (f" port={upstream_port}" if upstream_port else "")
    run_as = _run_as_user()
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = {upstream}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {workdir / 'userlist.txt'}",
                # The admin console (database `pgbouncer`): SHOW POOLS, SHOW STATS.
                f"admin_users = {user}",
                f"pool_mode = {pool_mode}",
                f"default_pool_size = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                f"max_client_conn = {max_client_conn}",
                # Django sends none of these, other clients (JDBC, some ORMs) do.
                "ignore_startup_parameters = extra_float_digits",
                f"logfile = {workdir / 'pgbouncer.log'}",
                f"pidfile = {workdir / 'pgbouncer.pid'}",
                "log_connections = 0",
                "log_disconnections = 0",
                *([f"user = {run_as}"] if run_as else []),
                "",
            ]
        )
    )
    if run_as:
        shutil.chown(workdir, user=run_as)
        for path in workdir.iterdir():
            shutil.chown(path, user=run_as)
    process = subprocess.Popen(  # noqa: S603
        [binary, str(workdir / "pgbouncer.ini")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bouncer = PgBouncer("127.0.0.1", port, pool_mode, workdir, process)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            log = bouncer.log()
            shutil.rmtree(workdir, ignore_errors=True)
            raise PgBouncerError(f"pgbouncer exited at start:\n{log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return bouncer
        if time.monotonic() > deadline:
            bouncer.stop()
            raise PgBouncerError(f"pgbouncer did not listen on port {port}")
        time.sleep(0.05)
