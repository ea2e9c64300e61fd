"""The benchmark's steps that need Django, each run in its own process by `foundation.py`.

    python -m bench.django_tasks provision --prefix p0 --count 10   # time tenant_create
    python -m bench.django_tasks fill --prefix fill --count 200
    python -m bench.django_tasks create --slug bench-load
    python -m bench.django_tasks count --host bench-load.localhost

Every command prints one JSON object on stdout (logs go to stderr). Settings
come from DJANGO_SETTINGS_MODULE (`bench.settings`), the database and Redis
from the environment `foundation.py` passes.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ADMIN_PASSWORD = "correct-horse-battery-staple"  # noqa: S105  (a benchmark tenant's admin)


def _setup_django() -> None:
    import django

    django.setup()


def _slug(prefix: str, index: int) -> str:
    return f"{prefix}-{index:03d}"


# ------------------------------------------------------------------ provisioning


def cmd_provision(args: argparse.Namespace) -> dict[str, Any]:
    """Time `tenant_create` (the service the API and the command use), one tenant after another."""
    from apps.tenants import services

    clone_seconds: list[float] = []
    clone = services.schema_clone_from_template

    def timed_clone(schema_name: str) -> None:
        started = time.perf_counter()
        clone(schema_name)
        clone_seconds.append(time.perf_counter() - started)

    services.schema_clone_from_template = timed_clone  # to report the clone's share
    existing = _customer_count()
    seconds: list[float] = []
    try:
        for index in range(args.start, args.start + args.count):
            slug = _slug(args.prefix, index)
            started = time.perf_counter()
            services.tenant_create(
                name=f"Bench {slug}",
                slug=slug,
                admin_email=f"admin@{slug}.example.com",
                admin_password=ADMIN_PASSWORD,
            )
            seconds.append(time.perf_counter() - started)
    finally:
        services.schema_clone_from_template = clone
    return {
        "existing_before": existing,
        "seconds": seconds,
        "clone_seconds": clone_seconds,
        "median": statistics.median(seconds),
        "clone_median": statistics.median(clone_seconds),
    }


def cmd_create(args: argparse.Namespace) -> dict[str, Any]:
    from apps.tenants.services import tenant_create

    result = tenant_create(
        name=f"Bench {args.slug}",
        slug=args.slug,
        admin_email=f"admin@{args.slug}.example.com",
        admin_password=ADMIN_PASSWORD,
    )
    return {"slug": result.tenant.slug, "host": result.domain.domain}


def _customer_count() -> int:
    from apps.tenants.models import Tenant

    return Tenant.objects.customers().count()


# ------------------------------------------------------------------ filler tenants


@contextmanager
def _cheap_password_hashing() -> Iterator[None]:
    # Setup only: the fillers' admins need a password, not a 100 ms Argon2 hash each.
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def cmd_fill(args: argparse.Namespace) -> dict[str, Any]:
    """Create `count` more tenants with the real `tenant_create` (only the admins'
    password hashing is made cheap: it is setup, not what is measured)."""
    from apps.tenants.services import tenant_create

    started = time.perf_counter()
    with _cheap_password_hashing():
        for index in range(1, args.count + 1):
            slug = _slug(args.prefix, index)
            tenant_create(
                name=f"Bench {slug}",
                slug=slug,
                admin_email=f"admin@{slug}.example.com",
                admin_password=ADMIN_PASSWORD,
            )
    return {
        "created": args.count,
        "seconds": time.perf_counter() - started,
        "method": "tenant_create",
        "customers_now": _customer_count(),
    }


# ------------------------------------------------------------------ statements per request


class _Recorder:
    """Counts SQL statements (at the psycopg level: what goes to the server, including the
    `SET search_path` and connection health checks Django's query log does not show) and
    Redis round trips (at the redis-py connection level)."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.redis: list[str] = []
        self._originals: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        import psycopg
        import redis.connection

        recorder = self
        execute = psycopg.Cursor.execute
        executemany = psycopg.Cursor.executemany

        def counted_execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.sql.append(_query_text(query))
            return execute(cursor, query, *args, **kwargs)

        def counted_executemany(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.sql.append(_query_text(query) + "  [executemany]")
            return executemany(cursor, query, *args, **kwargs)

        cursor_class: Any = psycopg.Cursor
        cursor_class.execute = counted_execute
        cursor_class.executemany = counted_executemany

        connection_class: Any = redis.connection.AbstractConnection
        send_command = connection_class.send_command
        pack_commands = connection_class.pack_commands

        def counted_send_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.redis.append(str(args[0]).upper() if args else "?")
            return send_command(conn, *args, **kwargs)

        def counted_pack_commands(conn: Any, commands: Any) -> Any:
            commands = list(commands)
            names = "+".join(str(command[0]).upper() for command in commands)
            recorder.redis.append(f"PIPELINE({names})")
            return pack_commands(conn, commands)

        connection_class.send_command = counted_send_command
        connection_class.pack_commands = counted_pack_commands
        self._originals = [
            (cursor_class, "execute", execute),
            (cursor_class, "executemany", executemany),
            (connection_class, "send_command", send_command),
            (connection_class, "pack_commands", pack_commands),
        ]

    def uninstall(self) -> None:
        """Put back what `install` replaced (a benchmark times its rounds without it)."""
        for owner, name, original in self._originals:
            setattr(owner, name, original)
        self._originals = []

    @contextmanager
    def window(self) -> Iterator[tuple[list[str], list[str]]]:
        sql: list[str] = []
        redis: list[str] = []
        self.sql, self.redis = sql, redis
        try:
            yield sql, redis
        finally:
            self.sql, self.redis = [], []


def _query_text(query: Any) -> str:
    text = query.as_string(None) if hasattr(query, "as_string") else query
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())


def _environ(path: str, host: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The WSGI environ gunicorn builds for `GET path` with this Host header (`extra`
    adds or replaces keys: a query string, an Authorization header...)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "bench-loadgen",
        "HTTP_ACCEPT": "application/json",
        "HTTP_CONNECTION": "close",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ.update(extra or {})
    return environ


def _request(
    app: Callable[..., Any], path: str, host: str, extra: dict[str, Any] | None = None
) -> int:
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
        status.append(line)
        return lambda data: None

    result = app(_environ(path, host, extra), start_response)
    try:
        b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(status[0].split()[0])


def cmd_count(args: argparse.Namespace) -> dict[str, Any]:
    """SQL statements and Redis commands per request, through the WSGI application gunicorn
    serves (so Django's request_started/finished signals and connection handling run as in
    production), on a cold and then a warm process; plus in-process time per request."""
    recorder = _Recorder()
    recorder.install()
    from bench.wsgi import application

    path = "/api/v1/info"
    with recorder.window() as (cold_sql, cold_redis):
        status = _request(application, path, args.host)
    if status != 200:
        raise SystemExit(f"GET {path} on {args.host} answered {status}")
    with recorder.window() as (warm_sql, warm_redis):
        for _ in range(args.requests):
            _request(application, path, args.host)
    timing: dict[str, float] = {}
    cpu_timing: dict[str, float] = {}
    for label, target, host in (
        ("bare", "/bench/bare", "localhost"),
        ("drf", "/bench/drf", "localhost"),
        ("platform", path, args.host),
    ):
        for _ in range(100):
            _request(application, target, host)
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(args.timing_requests):
            _request(application, target, host)
        timing[label] = (time.perf_counter() - started) / args.timing_requests * 1e6
        cpu_timing[label] = (time.process_time() - cpu_started) / args.timing_requests * 1e6
    return {
        "cold": {"sql": cold_sql, "redis": cold_redis},
        "warm": {
            "requests": args.requests,
            "sql_per_request": len(warm_sql) / args.requests,
            "redis_per_request": len(warm_redis) / args.requests,
            "sql": dict(Counter(warm_sql)),
            "redis": dict(Counter(warm_redis)),
        },
        "in_process_us_per_request": timing,
        # This process's CPU alone, without the waits on PostgreSQL and Redis.
        "in_process_cpu_us_per_request": cpu_timing,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    provision = sub.add_parser("provision")
    provision.add_argument("--prefix", required=True)
    provision.add_argument("--start", type=int, default=1)
    provision.add_argument("--count", type=int, default=10)
    fill = sub.add_parser("fill")
    fill.add_argument("--prefix", required=True)
    fill.add_argument("--count", type=int, default=200)
    create = sub.add_parser("create")
    create.add_argument("--slug", required=True)
    count = sub.add_parser("count")
    count.add_argument("--host", required=True)
    count.add_argument("--requests", type=int, default=50)
    count.add_argument("--timing-requests", type=int, default=1000)
    args = parser.parse_args()
    _setup_django()
    commands: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "provision": cmd_provision,
        "fill": cmd_fill,
        "create": cmd_create,
        "count": cmd_count,
    }
    result = commands[args.command](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
