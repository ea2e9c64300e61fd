"""The scale benchmark's steps that need Django, run by `scale.py` in their own processes.

    python -m bench.scale_tasks fill --prefix s --start 1 --count 500 --users 5 --out tokens.jsonl
    python -m bench.scale_tasks memory --tokens tokens.jsonl --steps 1,100,1000
    python -m bench.scale_tasks fan-out --job cleanup_expired_sessions

Every command prints one JSON object on stdout (logs go to stderr), like
`bench.django_tasks`, whose WSGI request helpers are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_scale")
    import django

    django.setup()


# ------------------------------------------------------------------ tenants, users, tokens


def cmd_fill(args: argparse.Namespace) -> dict[str, Any]:
    """`count` tenants made by the real `tenant_create` (only the admins' password hashing made
    cheap: setup, not what is measured), `users` users in each (the admin and bulk-inserted
    others), and one access token per tenant (the admin's, from `session_start`: a session
    as a sign-in makes it, without the password hash) appended to `--out` as JSON lines."""
    from django.contrib.auth.hashers import make_password
    from django_tenants.utils import tenant_context

    from apps.accounts.models import User
    from apps.accounts.services.sessions import ClientInfo, session_start
    from apps.tenants.services import tenant_create
    from bench.django_tasks import ADMIN_PASSWORD, _cheap_password_hashing, _slug

    client = ClientInfo(ip_address="127.0.0.1", user_agent="bench-scale")
    started = time.perf_counter()
    lines = []
    with _cheap_password_hashing():
        shared_hash = make_password("not-a-real-password")
        for index in range(args.start, args.start + args.count):
            slug = _slug(args.prefix, index)
            result = tenant_create(
                name=f"Bench {slug}",
                slug=slug,
                admin_email=f"admin@{slug}.example.com",
                admin_password=ADMIN_PASSWORD,
            )
            with tenant_context(result.tenant):
                User.objects.bulk_create(
                    User(
                        email=f"user{n}@{slug}.example.com",
                        username=f"user{n}",
                        full_name=f"User {n}",
                        password=shared_hash,
                    )
                    for n in range(1, args.users)
                )
                admin = User.objects.get(email=f"admin@{slug}.example.com")
                pair = session_start(user=admin, client=client)
            lines.append(
                json.dumps(
                    {
                        "schema": result.tenant.schema_name,
                        "host": result.domain.domain,
                        "token": pair.access_token,
                    }
                )
            )
    with Path(args.out).open("a") as out:
        out.write("\n".join(lines) + "\n")
    return {"created": args.count, "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------ memory per schema touched


def _backend_memory(pid: int) -> dict[str, float]:
    """A PostgreSQL backend's memory, MiB: RSS, USS (pages no other process maps: its heap,
    and also the shared buffers only it has touched) and Linux's RssAnon (its heap alone:
    the relation, catalog and plan caches that grow with every schema it reads)."""
    import psutil

    info = psutil.Process(pid).memory_full_info()
    anon = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) / 1024
    return {"rss": info.rss / 2**20, "uss": info.uss / 2**20, "anon": anon}


def _own_memory() -> float:
    import psutil

    return float(psutil.Process().memory_full_info().uss / 2**20)


def cmd_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Serve `GET /api/v1/users?page_size=20` (it reads each tenant's tables: the relation
    caches of the backend grow per schema) for the first 1, 100, 1000... tenants, in this one
    process through the platform's WSGI application, with persistent database connections
    (CONN_MAX_AGE None) closed only by DB_MAX_SCHEMAS_PER_CONNECTION; after every request the
    memory of the PostgreSQL backend serving it (its peak is kept), and after each step this
    process's memory and the sizes of the per-process caches a gunicorn worker keeps
    (tenants by host, verified tokens)."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = None  # kept until the schema bound
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from apps.accounts import verified_tokens
    from apps.tenants import resolution
    from bench.django_tasks import _request

    tenants = [json.loads(line) for line in Path(args.tokens).read_text().splitlines() if line]
    steps = sorted({min(int(step), len(tenants)) for step in args.steps.split(",")})
    app = get_wsgi_application()
    connection.ensure_connection()
    start_pid = connection.connection.info.backend_pid
    rows = [{"schemas": 0, "backend": _backend_memory(start_pid), "process_uss": _own_memory()}]
    pids = {start_pid}
    peak = {"rss": 0.0, "uss": 0.0, "anon": 0.0}
    served = 0
    failures = 0
    for step in steps:
        for tenant in tenants[served:step]:
            live = connection.connection  # before the request: it may be closed at its end
            extra = {
                "QUERY_STRING": "page_size=20",
                "HTTP_AUTHORIZATION": f"Bearer {tenant['token']}",
            }
            status = _request(app, "/api/v1/users", tenant["host"], extra)
            failures += status != 200
            if live is not None and live is not connection.connection:
                continue  # closed at the end of this request: its memory went with it
            if connection.connection is not None:
                pid = connection.connection.info.backend_pid
                pids.add(pid)
                memory = _backend_memory(pid)
                peak = {key: max(peak[key], memory[key]) for key in peak}
        served = step
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        rows.append(
            {
                "schemas": step,
                "backend": _backend_memory(pid),
                "backend_peak": dict(peak),
                "connections": len(pids | {pid}),
                "process_uss": _own_memory(),
                "tenant_cache_entries": len(resolution._local),
                "verified_token_entries": len(verified_tokens._verified),
            }
        )
    return {
        "max_schemas_per_connection": settings.DATABASES["default"].get("MAX_SCHEMAS"),
        "steps": rows,
        "failures": failures,
        "tenant_cache_max": resolution._LOCAL_MAX_ENTRIES,
        "verified_tokens_max": verified_tokens.MAX_ENTRIES,
    }


# ------------------------------------------------------------------ in-process cost per spread


def cmd_spread(args: argparse.Namespace) -> dict[str, Any]:
    """`GET /api/v1/users/me` through the platform's WSGI application in this process, each
    request's tenant and token taken in turn from the first 1, 100, 1000... tenants: CPU
    time and SQL statements per request after a warm-up pass (no network, no other process:
    what the request path itself costs as the tenants multiply)."""
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from bench.django_tasks import _request

    tenants = [json.loads(line) for line in Path(args.tokens).read_text().splitlines() if line]
    app = get_wsgi_application()
    statements: list[int] = [0]

    def counted(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        return execute(sql, params, many, context)

    results = {}
    for step in sorted({min(int(step), len(tenants)) for step in args.steps.split(",")}):
        chosen = tenants[:step]
        environs = [(t["host"], {"HTTP_AUTHORIZATION": f"Bearer {t['token']}"}) for t in chosen]
        for host, extra in environs * 2:  # warm: every tenant and token seen twice
            _request(app, "/api/v1/users/me", host, extra)
        count = max(args.requests, step)
        statements[0] = 0
        failures = 0
        with connection.execute_wrapper(counted):
            started = time.process_time()
            for index in range(count):
                host, extra = environs[index % step]
                failures += _request(app, "/api/v1/users/me", host, extra) != 200
            cpu = time.process_time() - started
        results[str(step)] = {
            "cpu_us_per_request": cpu / count * 1e6,
            "sql_per_request": statements[0] / count,
            "failures": failures,
        }
    return {"steps": results}


# ------------------------------------------------------------------ the periodic fan-out


def _worker_start(logs: Path) -> subprocess.Popen[bytes]:
    from platform_site.celery import app

    name = f"bench-scale@{os.uname().nodename}"
    log = (logs / "scale-worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "--concurrency", "2",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", name],
        env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[name], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the benchmark's worker did not start")
    return process


def _expired_sessions_plant() -> int:
    """One session per tenant that ended long ago: the cleanup of each tenant deletes it, so
    counting what is left afterwards shows which tenants' runs really happened."""
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import Session, User
    from apps.core.tenancy import tenant_schema_names

    ended = timezone.now() - timedelta(days=30)
    schemas = tenant_schema_names(active_only=True)
    for schema in schemas:
        with schema_context(schema):
            user = User.objects.order_by("id")[0]
            Session.objects.create(
                user=user, last_used_at=ended, expires_at=ended, refresh_jti=uuid.uuid4().hex
            )
    return len(schemas)


def _expired_sessions_left() -> int:
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.accounts.models import Session
    from apps.core.tenancy import tenant_schema_names

    horizon = timezone.now() - timedelta(days=20)
    left = 0
    for schema in tenant_schema_names(active_only=True):
        with schema_context(schema):
            left += Session.objects.filter(expires_at__lt=horizon).count()
    return left


def cmd_fan_out(args: argparse.Namespace) -> dict[str, Any]:
    """The daily cleanup fanned out over every tenant, on one worker (2 processes): from
    beat's message (`job_fan_out`, as `core.jobs_fan_out` calls it) until no run is left;
    the runs queued or running sampled every 0.1 s (their run flags in Redis); a second
    beat tick one second in; every tenant's run checked afterwards by what it deleted."""
    from django.conf import settings
    from django_redis import get_redis_connection

    from apps.jobs.periodic import FAN_OUT, job_fan_out
    from apps.jobs.run_flags import run_flag_key

    planted = _expired_sessions_plant()
    redis = get_redis_connection("default")
    walk_key = run_flag_key(args.job, FAN_OUT).encode()
    pattern = run_flag_key(args.job, "*")
    worker = _worker_start(Path(args.logs))
    try:
        started = time.perf_counter()
        first = len(job_fan_out(args.job))
        second: int | None = None
        most = 0
        while True:
            keys = [key for key in redis.scan_iter(match=pattern, count=1000) if key != walk_key]
            most = max(most, len(keys))
            elapsed = time.perf_counter() - started
            if second is None and elapsed >= 1.0:
                second = len(job_fan_out(args.job))
            if second is not None and not keys and not redis.exists(walk_key):
                break
            if elapsed > args.timeout:
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return {
        "tenants": planted,
        "seconds": seconds,
        "first_tick_queued": first,
        "second_tick_queued": second,
        "most_pending": most,
        "batch": settings.JOBS_FAN_OUT_BATCH,
        "tenants_not_cleaned": _expired_sessions_left(),
        "timed_out": seconds > args.timeout,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fill = sub.add_parser("fill")
    fill.add_argument("--prefix", required=True)
    fill.add_argument("--start", type=int, default=1)
    fill.add_argument("--count", type=int, required=True)
    fill.add_argument("--users", type=int, default=5)
    fill.add_argument("--out", required=True)
    memory = sub.add_parser("memory")
    memory.add_argument("--tokens", required=True)
    memory.add_argument("--steps", default="1,100,1000")
    spread = sub.add_parser("spread")
    spread.add_argument("--tokens", required=True)
    spread.add_argument("--steps", default="1,100,1000")
    spread.add_argument("--requests", type=int, default=2000)
    fan_out = sub.add_parser("fan-out")
    fan_out.add_argument("--job", default="cleanup_expired_sessions")
    fan_out.add_argument("--logs", required=True)
    fan_out.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    _setup_django()
    commands = {
        "fill": cmd_fill,
        "memory": cmd_memory,
        "spread": cmd_spread,
        "fan-out": cmd_fan_out,
    }
    result = commands[args.command](args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
