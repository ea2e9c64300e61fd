"""Foundation benchmark: the platform's cost per request, per tenant provisioned and per worker.

Run it from the repository root with the virtual environment's Python (the
one `python3 run.py` creates):

    .venv/bin/python bench/foundation.py            # about 3 minutes on 2 cores
    .venv/bin/python bench/foundation.py --quick    # shorter rounds, 20 fillers: a smoke test

(Started with another Python it re-runs itself with `.venv/bin/python`.)

Services: with DATABASE_URL / REDIS_URL unset it starts the embedded
PostgreSQL and Redis of `devtools.services` (for_tests=True) with
their data under `<PLATFORM_LOCAL_DIR or .local>/bench/`, never the
developer's `.local/` data, and stops them at the end. With DATABASE_URL set it
uses that server but its own database, `platform_bench`, dropped and created
again on every run; with REDIS_URL set it uses that server with the key prefix
`platform-bench` (only those keys are deleted) and an in-memory Celery broker,
so no task reaches a real worker. Logs of every step and server go to
`<local dir>/bench/logs/`.

What it measures (the acceptance text of the issue):

1. Requests per second of `GET /api/v1/info` on a tenant host (tenant
   resolution, gateway rate limit counted in Redis but never reached, envelope)
   against a bare Django `JsonResponse` view served by the same gunicorn in the
   same run, and a plain DRF `APIView` ("DRF alone"). gunicorn starts as the
   production image starts it: `gunicorn.conf.py` (2 sync workers, the app
   preloaded in the master, JSON logs) with `bench.settings`
   (`platform_site.settings.production`, DEBUG off, the JSON access log line
   per request at INFO, written to a log file).
   The references are honestly bare: `bench/wsgi.py` sends `/bench/...` paths
   to a Django WSGI handler with an empty middleware chain and its own URLconf,
   every other path to the platform's unchanged WSGI application, so the
   baseline runs in the same processes, with the same settings, under the same
   load generator, but through none of the platform's layers.
   Rounds are interleaved (bare, DRF, platform, bare, ...) after a warm-up;
   per-round figures, medians and ratios are printed, with the workers' CPU
   time per request.
   Load: `bench/loadgen.py` (wrk when installed), one connection per request
   since gunicorn's sync worker closes each one. On a small machine the
   generator shares the cores with the server, so its CPU per request and its
   ceiling against a trivial server are printed too.
2. SQL statements and Redis commands per request on a warm worker. SQL is
   counted at the psycopg level in a separate process calling the same WSGI
   application (so `SET search_path` and connection health checks, which
   Django's query log misses, count too); Redis with MONITOR on the Redis
   server while the real gunicorn answers requests.
3. Tenant provisioning (`apps.tenants.services.tenant_create`, median of 10)
   with 0 and with 200 more existing tenants (those made by `tenant_create`
   too, with cheap password hashing for their admins); before each timed series
   the database is VACUUM ANALYZEd, as autovacuum keeps it in a running system.
   The schema copy's own share is printed beside each median.
4. Memory (RSS, USS, PSS) per gunicorn worker of the platform against two
   baselines, each in its own gunicorn with the app preloaded like the
   platform's (`bench/gunicorn_bare.conf.py`): a minimal Django project
   (`bench.settings_bare`: no apps, no middleware, no database, one
   `JsonResponse` view), the strictest floor, and Django as `startproject`
   makes it (`bench.settings_startproject`: default apps and middleware, the
   same PostgreSQL), what a plain Django service starts from. Both are printed
   against the target.

5. Tracing (OpenTelemetry). The platform server above runs with tracing off (no
   OTEL_* variable: nothing installed), so its figures are the cost of tracing
   off; compare them with the run-to-run spread printed beside them. A second
   platform gunicorn, the same in all else, runs with tracing on: every request
   sampled (`OTEL_TRACES_SAMPLER=always_on`), spans exported by the real OTLP
   exporter to a collector in this process that reads and discards them. Its
   endpoint takes its turn in the interleaved rounds ("traced"); its requests
   per second and worker CPU per request are reported against tracing off.

The summary (figures, targets, PASS/FAIL) is printed and written to
`bench/results/foundation.json`. The exit status is 0 whenever the measurement
ran, whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
DATABASE_NAME = "platform_bench"
KEY_PREFIX = "platform-bench"
LOAD_TENANT = "bench-load"
WORKERS = 2
# The platform server runs with the production image's gunicorn settings; the bare one with
# gunicorn's defaults (2 sync workers) and nothing of the platform's.
PLATFORM_CONFIG = ROOT / "gunicorn.conf.py"
BARE_CONFIG = ROOT / "bench" / "gunicorn_bare.conf.py"

# Targets from the issue's acceptance text.
TARGET_RPS_RATIO = 0.5
TARGET_SQL_PER_REQUEST = 1
TARGET_PROVISION_SECONDS = 1.0
TARGET_PROVISION_GROWTH = 1.25  # "not growing": at most 25% slower with 200 more tenants
TARGET_MEMORY_RATIO = 1.5


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Plan:
    rounds: int = 5
    round_seconds: float = 5.0
    warmup_seconds: float = 2.0
    connections: int = 8
    processes: int = 1
    provision_count: int = 10
    fillers: int = 200
    monitor_requests: int = 300

    @classmethod
    def quick(cls) -> Plan:
        return cls(rounds=3, round_seconds=2.0, warmup_seconds=1.0, fillers=20, provision_count=3)


@dataclass
class Environment:
    """Where the services are, and the environment every benchmark process gets."""

    database_url: str
    redis_url: str
    embedded: list[str]
    local_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def logs(self) -> Path:
        path = self.local_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


def bench_local_dir() -> Path:
    base = Path(os.environ.get("PLATFORM_LOCAL_DIR", ROOT / ".local")).resolve()
    return base / "bench"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def process_env(
    database_url: str, redis_url: str, local_dir: Path, external_redis: bool
) -> dict[str, str]:
    """Production's defaults: only the variables the benchmark must set, nothing from the
    caller's shell that could change the platform's behaviour (LOG_LEVEL, DB_CONN_MAX_AGE...)."""
    # METRICS_ENABLED: on (the default) or off, to measure what the metrics cost.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "XDG_RUNTIME_DIR",
            "METRICS_ENABLED")  # fmt: skip
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),  # 64 random characters
            "DJANGO_DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "localhost,.localhost",
            "API_RATE_LIMIT": "100000000/m",
            "CACHE_KEY_PREFIX": KEY_PREFIX,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PLATFORM_LOCAL_DIR": str(local_dir),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "WEB_CONCURRENCY": str(WORKERS),
        }
    )
    if external_redis:
        env["CELERY_BROKER_URL"] = "memory://"
    return env


# ------------------------------------------------------------------ services and data


def start_services(stack: contextlib.ExitStack) -> Environment:
    from devtools.services import services_start

    local_dir = bench_local_dir()
    local_dir.mkdir(parents=True, exist_ok=True)
    services = services_start(local_dir, for_tests=True)
    stack.callback(services.stop)
    if services.started:
        stack.callback(say, "stopping the embedded services")
    database_url = services.env.get("DATABASE_URL") or os.environ["DATABASE_URL"]
    redis_url = services.env.get("REDIS_URL") or os.environ["REDIS_URL"]
    bench_db_url = with_database(database_url, DATABASE_NAME)
    return Environment(
        database_url=bench_db_url,
        redis_url=redis_url,
        embedded=list(services.started),
        local_dir=local_dir,
        env=process_env(bench_db_url, redis_url, local_dir, "redis" not in services.started),
    )


def recreate_database(environment: Environment) -> str:
    import psycopg

    admin_url = with_database(environment.database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def reset_redis(environment: Environment) -> str:
    import redis

    client = redis.Redis.from_url(environment.redis_url)
    try:
        if "redis" in environment.embedded:
            client.flushall()  # the benchmark's own server
        else:
            for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
                client.delete(key)
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()


def vacuum_analyze(environment: Environment) -> float:
    """Database-wide VACUUM ANALYZE: what autovacuum does within a minute or two in a running
    system. Without the statistics (a database seconds old, never analyzed) clone_schema()'s
    catalog queries get plans ten times slower, which a running system does not see; and
    without the vacuum, autovacuum would do it during the load rounds, stealing CPU."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(environment.database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def run_step(environment: Environment, name: str, *args: str) -> str:
    """Run a Python step (manage.py or bench.django_tasks) with the benchmark's environment."""
    log = environment.logs() / f"{name}.log"
    with log.open("ab") as stderr:
        completed = subprocess.run(
            [str(sys.executable), *args],
            cwd=ROOT,
            env=environment.env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            check=False,
        )
    if completed.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"{name} failed ({completed.returncode}); end of {log}:\n" + "\n".join(tail)
        )
    return completed.stdout.decode()


def django_task(environment: Environment, *args: str) -> dict[str, Any]:
    output = run_step(environment, f"task-{args[0]}", "-m", "bench.django_tasks", *args)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------ gunicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_exchange(
    port: int,
    path: str,
    host: str,
    timeout: float = 5.0,
    *,
    method: str = "GET",
    headers: loadgen.Headers = (),
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One blocking request; the status code (0 when no HTTP answer came) and the body."""
    request = loadgen.build_request(path, host, method=method, headers=headers, body=body)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1."):
        return 0, b""
    return int(data[9:12]), data.partition(b"\r\n\r\n")[2]


def http_get(
    port: int,
    path: str,
    host: str,
    timeout: float = 5.0,
    *,
    method: str = "GET",
    headers: loadgen.Headers = (),
    body: bytes = b"",
) -> int:
    """One blocking request; the status code, or 0 when no HTTP answer came."""
    status, _ = http_exchange(port, path, host, timeout, method=method, headers=headers, body=body)
    return status


class Server:
    """A gunicorn of the benchmark: its port, its workers' CPU, memory and restarts."""

    def __init__(
        self,
        environment: Environment,
        name: str,
        app: str,
        config: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log = environment.logs() / f"gunicorn-{name}.log"
        self._log_offset = 0
        command = [
            str(sys.executable),
            "-m",
            "gunicorn",
            app,
            "--config",
            str(config),
            "--bind",
            f"127.0.0.1:{self.port}",
            # Its own control socket: never the one of a gunicorn the developer runs.
            "--control-socket",
            str(environment.local_dir / f"gunicorn-{name}.ctl"),
        ]
        self.handle = self.log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**environment.env, **(extra_env or {})},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, path: str = "/bench/bare", host: str = "localhost") -> None:
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited; see {self.log}")
            with contextlib.suppress(OSError):
                if len(self.workers()) == WORKERS and http_get(self.port, path, host) == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn ({self.name}) did not answer; see {self.log}")
            time.sleep(0.2)

    def workers(self) -> list[Any]:
        import psutil

        return list(psutil.Process(self.process.pid).children())

    def cpu_seconds(self) -> float:
        """CPU time of every worker so far, including workers that exited (and were reaped
        by the master), so the difference across a round is right even when gunicorn
        recycled workers during it (a new worker's boot counts: it is part of the cost)."""
        import psutil

        master = psutil.Process(self.process.pid).cpu_times()
        total = master.children_user + master.children_system
        for worker in self.workers():
            with contextlib.suppress(psutil.Error):
                times = worker.cpu_times()
                total += times.user + times.system
        return total

    def worker_boots(self) -> int:
        """Workers booted since the last call (read from the log as it grows)."""
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            data = log.read()
        self._log_offset += len(data)
        return data.count(b"Booting worker")

    def memory(self) -> list[dict[str, float]]:
        import psutil

        result = []
        for worker in self.workers():
            try:
                info = worker.memory_full_info()
                result.append({"rss": info.rss, "uss": info.uss, "pss": getattr(info, "pss", 0.0)})
            except psutil.AccessDenied:
                result.append({"rss": worker.memory_info().rss, "uss": 0.0, "pss": 0.0})
        return result

    def stop(self) -> None:
        import psutil

        if self.process.poll() is None:
            children = []
            with contextlib.suppress(psutil.Error):
                children = self.workers()
            self.process.terminate()
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        self.handle.close()


def start_server(stack: contextlib.ExitStack, *args: Any, **kwargs: Any) -> Server:
    server = Server(*args, **kwargs)
    stack.callback(server.stop)
    server.wait_ready()
    return server


class OtlpSink:
    """An OTLP/HTTP collector that reads what it is sent and drops it: the traced server's
    exporter does all of its work (protobuf, HTTP), and nothing is kept."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        sink = self
        self.spans = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(
                    len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
                )
                with sink._lock:
                    sink.spans += count
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tracing_env(self) -> dict[str, str]:
        """Tracing on, by the standard variables only: every request, OTLP to this sink."""
        return {
            "OTEL_SERVICE_NAME": "platform-bench",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "OTEL_TRACES_SAMPLER": "always_on",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ measurements


@dataclass(frozen=True)
class Endpoint:
    label: str
    server: Server
    path: str
    host: str
    method: str = "GET"
    headers: loadgen.Headers = ()  # extra request headers, e.g. Authorization
    body: bytes = b""

    def request(self) -> int:
        """One blocking request to this endpoint; its status code."""
        return http_get(
            self.server.port,
            self.path,
            self.host,
            method=self.method,
            headers=self.headers,
            body=self.body,
        )


def load(endpoint: Endpoint, plan: Plan, seconds: float) -> dict[str, Any]:
    server = endpoint.server
    cpu_before = server.cpu_seconds()
    result = loadgen.run(
        "127.0.0.1",
        server.port,
        endpoint.path,
        endpoint.host,
        duration=seconds,
        connections=plan.connections,
        processes=plan.processes,
        method=endpoint.method,
        headers=endpoint.headers,
        body=endpoint.body,
    )
    cpu = server.cpu_seconds() - cpu_before
    summary = result.summary()
    done = result.ok + result.non_200
    summary["worker_cpu_us_per_request"] = round(cpu / done * 1e6, 1) if done else 0.0
    summary["worker_restarts"] = server.worker_boots()
    return summary


def load_rounds(endpoints: list[Endpoint], plan: Plan) -> dict[str, list[dict[str, Any]]]:
    say(f"warm-up: {plan.warmup_seconds:g}s per endpoint")
    for endpoint in endpoints:
        load(endpoint, plan, plan.warmup_seconds)
    for endpoint in endpoints:
        endpoint.server.worker_boots()
    rounds: dict[str, list[dict[str, Any]]] = {endpoint.label: [] for endpoint in endpoints}
    for index in range(1, plan.rounds + 1):
        line = []
        for endpoint in endpoints:
            result = load(endpoint, plan, plan.round_seconds)
            rounds[endpoint.label].append(result)
            bad = result["non_200"] + result["errors"]
            line.append(
                f"{endpoint.label} {result['rps']:.0f}" + (f" ({bad} failed)" if bad else "")
            )
        say(f"round {index}/{plan.rounds} (rps): " + ", ".join(line))
    return rounds


# What each worker reads again from Redis once per TENANT_CACHE_LOCAL_SECONDS (its
# in-process tenant cache): not a per-request command. A GET of such a key is set
# apart below, at most once per worker and per started period of the window, so
# that a lookup made on every request would still count.
TENANT_HOST_KEY = ":tenancy:host:"
TENANT_CACHE_LOCAL_SECONDS = 5.0


def redis_monitor(environment: Environment, endpoint: Endpoint, requests: int) -> dict[str, Any]:
    """Redis commands the real gunicorn workers send per request, seen by the Redis server.

    The window starts on warm workers (a few requests just before it, so that a worker
    idle for a while does not refresh its tenant cache in the window). Tenant-host
    lookups within the allowance above are reported apart, as `periodic`."""
    import redis

    for _ in range(4 * WORKERS):
        endpoint.request()

    client = redis.Redis.from_url(environment.redis_url)
    sentinel = f"bench-monitor-end-{secrets.token_hex(4)}"
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if sentinel in entry["command"]:
                    return
                seen.append(entry)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    time.sleep(0.2)  # MONITOR is on once the server has replied to it
    started = time.monotonic()
    for _ in range(requests):
        endpoint.request()
    window = time.monotonic() - started
    other = redis.Redis.from_url(environment.redis_url)
    other.echo(sentinel)
    watcher.join(10)
    other.close()
    client.close()

    # The workers' connections: those that used the benchmark's keys during the window.
    workers = {
        (entry["client_address"], entry["client_port"])
        for entry in seen
        if entry["client_type"] != "lua" and KEY_PREFIX in entry["command"]
    }
    by_command: Counter[str] = Counter()
    in_lua: Counter[str] = Counter()
    allowance = WORKERS * (int(window // TENANT_CACHE_LOCAL_SECONDS) + 1)
    periodic = 0
    for entry in seen:
        verb = entry["command"].split(" ", 1)[0].upper()
        if entry["client_type"] == "lua":
            in_lua[verb] += 1
        elif (entry["client_address"], entry["client_port"]) in workers:
            if verb == "GET" and TENANT_HOST_KEY in entry["command"] and periodic < allowance:
                periodic += 1
                continue
            by_command[verb] += 1
    return {
        "requests": requests,
        "per_request": sum(by_command.values()) / requests,
        "by_command": {verb: count / requests for verb, count in by_command.most_common()},
        "inside_lua_per_request": {verb: count / requests for verb, count in in_lua.items()},
        "worker_connections": len(workers),
        "window_seconds": round(window, 3),
        "periodic_tenant_cache_refreshes": periodic,
    }


def settled_memory(endpoints: list[Endpoint]) -> list[dict[str, float]]:
    """Worker memory once each worker has served every endpoint (a worker recycled just
    before would otherwise not have loaded everything yet)."""
    for endpoint in endpoints:
        for _ in range(100):
            endpoint.request()
    return endpoints[0].server.memory()


def memory_summary(samples: list[dict[str, float]]) -> dict[str, float]:
    return {
        kind: round(statistics.mean(sample[kind] for sample in samples) / 2**20, 1)
        for kind in ("rss", "uss", "pss")
    }


def provisioning(environment: Environment, plan: Plan) -> dict[str, Any]:
    count = str(plan.provision_count)
    vacuum_analyze(environment)
    say(f"provisioning: tenant_create x{count} with 0 existing tenants")
    empty = django_task(environment, "provision", "--prefix", "p0", "--count", count)
    say(f"  median {empty['median']:.3f}s (of which schema copy {empty['clone_median']:.3f}s)")
    say(f"creating {plan.fillers} more tenants (setup)")
    fill = django_task(
        environment,
        "fill",
        *("--prefix", "fill", "--count", str(plan.fillers)),
    )
    say(f"  {fill['created']} in {fill['seconds']:.1f}s: {fill['method']}")
    say(f"  VACUUM ANALYZE ({vacuum_analyze(environment):.1f}s), as autovacuum would have by now")
    say(f"provisioning: tenant_create x{count} with {fill['customers_now']} existing tenants")
    full = django_task(environment, "provision", "--prefix", "p1", "--count", count)
    say(f"  median {full['median']:.3f}s (of which schema copy {full['clone_median']:.3f}s)")
    return {"empty": empty, "fill": fill, "full": full}


# ------------------------------------------------------------------ the run


def run(plan: Plan) -> dict[str, Any]:
    started = time.monotonic()
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "plan": asdict(plan),
    }
    with contextlib.ExitStack() as stack:
        environment = start_services(stack)
        for old_log in environment.logs().glob("*.log"):
            old_log.unlink()  # each run's logs only
        say(
            "services: "
            + (
                f"embedded {' and '.join(environment.embedded)} under {environment.local_dir}"
                if environment.embedded
                else "from DATABASE_URL / REDIS_URL"
            )
            + f"; database '{DATABASE_NAME}' (dropped and created again)"
        )
        report["services"] = {
            "embedded": environment.embedded,
            "postgresql": recreate_database(environment),
            "redis": reset_redis(environment),
        }
        if "redis" not in environment.embedded:
            stack.callback(reset_redis, environment)  # leave no benchmark keys behind
        say("migrate_schemas and collectstatic, as a deploy does")
        run_step(environment, "migrate", "manage.py", "migrate_schemas", "--noinput", "-v", "0")
        run_step(environment, "collectstatic", "manage.py", "collectstatic", "--noinput", "-v", "0")

        say("load generator ceiling, against a trivial server on this machine")
        ceiling, what = loadgen.self_test(2.0, plan.connections, plan.processes)
        report["generator_ceiling"] = {**ceiling.summary(), "server": what}
        say(
            f"  {ceiling.rps:.0f} rps, {ceiling.generator_cpu_us_per_request:.0f} us of generator "
            f"CPU per request ({plan.processes} process, {plan.connections} connections)"
        )

        report["provisioning"] = provisioning(environment, plan)
        django_task(environment, "create", "--slug", LOAD_TENANT)
        tenant_host = f"{LOAD_TENANT}.localhost"

        say("SQL statements and Redis commands per request (same WSGI app, separate process)")
        report["per_request_counts"] = django_task(environment, "count", "--host", tenant_host)

        say(
            f"gunicorn as the image runs it (gunicorn.conf.py, {WORKERS} sync workers, production "
            "settings)"
        )
        app = "bench.wsgi:application"
        server = start_server(stack, environment, "platform", app, PLATFORM_CONFIG)
        if http_get(server.port, "/api/v1/info", tenant_host) != 200:
            raise RuntimeError(f"GET /api/v1/info on {tenant_host} failed; see {server.log}")
        say("the same platform with tracing on (every request sampled, OTLP to a sink)")
        sink = OtlpSink()
        stack.callback(sink.stop)
        traced = start_server(
            stack, environment, "platform-traced", app, PLATFORM_CONFIG, sink.tracing_env()
        )
        endpoints = [
            Endpoint("bare", server, "/bench/bare", "localhost"),
            Endpoint("drf", server, "/bench/drf", "localhost"),
            Endpoint("platform", server, "/api/v1/info", tenant_host),
            Endpoint("traced", traced, "/api/v1/info", tenant_host),
        ]
        report["load"] = {"rounds": load_rounds(endpoints, plan)}
        traced.stop()
        time.sleep(1)  # the last batches (exported every 5 s, and at the workers' exit)
        report["tracing"] = {"spans_exported": sink.spans}
        endpoints = endpoints[:3]
        say("Redis MONITOR while the platform server answers requests")
        report["redis_monitor"] = redis_monitor(environment, endpoints[2], plan.monitor_requests)
        platform_memory = settled_memory(endpoints[:3])
        server.stop()

        say("bare Django project (bench.settings_bare) in its own gunicorn, for memory")
        bare = start_server(stack, environment, "bare", "bench.wsgi_bare:application", BARE_CONFIG)
        bare_endpoint = Endpoint("bare-server", bare, "/bench/bare", "localhost")
        load(bare_endpoint, plan, plan.warmup_seconds)
        report["bare_server_rps"] = load(bare_endpoint, plan, plan.round_seconds)
        bare_memory = settled_memory([bare_endpoint])
        bare.stop()

        say("Django as startproject makes it, on the same PostgreSQL, in its own gunicorn")
        project = start_server(
            stack, environment, "startproject", "bench.wsgi_startproject:application", BARE_CONFIG
        )
        project_endpoint = Endpoint("startproject-server", project, "/bench/bare", "localhost")
        load(project_endpoint, plan, plan.warmup_seconds)
        report["startproject_server_rps"] = load(project_endpoint, plan, plan.round_seconds)
        project_memory = settled_memory([project_endpoint])
        project.stop()
        report["memory"] = {
            "platform_workers": platform_memory,
            "bare_workers": bare_memory,
            "startproject_workers": project_memory,
            "platform_mib": memory_summary(platform_memory),
            "bare_mib": memory_summary(bare_memory),
            "startproject_mib": memory_summary(project_memory),
        }

    report["duration_seconds"] = round(time.monotonic() - started, 1)
    report["summary"] = [asdict(check) for check in summarize(report)]
    return report


# ------------------------------------------------------------------ the summary


@dataclass
class Check:
    name: str
    value: str
    target: str = ""
    passed: bool | None = None  # None: a figure to read, no target

    def line(self) -> str:
        verdict = "" if self.passed is None else (" PASS" if self.passed else " FAIL")
        target = f" (target {self.target})" if self.target else ""
        return f"{self.name}: {self.value}{target}{verdict}"


def summarize(report: dict[str, Any]) -> list[Check]:
    rounds = report["load"]["rounds"]
    rps = {label: statistics.median(r["rps"] for r in runs) for label, runs in rounds.items()}
    cpu = {
        label: statistics.median(r["worker_cpu_us_per_request"] for r in runs)
        for label, runs in rounds.items()
    }
    ratio = rps["platform"] / rps["bare"]
    failed = sum(r["non_200"] + r["errors"] for runs in rounds.values() for r in runs)
    restarts = sum(
        r["worker_restarts"] for r in rounds["bare"] + rounds["drf"] + rounds["platform"]
    )
    generator_cpu = statistics.median(r["generator_cpu_us_per_request"] for r in rounds["bare"])
    ceiling = report["generator_ceiling"]
    in_process = report["per_request_counts"]["in_process_us_per_request"]
    warm = report["per_request_counts"]["warm"]
    sql_text = ", ".join(f"{n / warm['requests']:g} x {q[:70]}" for q, n in warm["sql"].items())
    monitor = report["redis_monitor"]
    redis_text = ", ".join(f"{v:.2f} {k}" for k, v in monitor["by_command"].items())
    lua_text = ", ".join(f"{v:.2f} {k}" for k, v in monitor["inside_lua_per_request"].items())
    provisioning = report["provisioning"]
    empty, full = provisioning["empty"], provisioning["full"]
    growth = full["median"] / empty["median"]
    memory = report["memory"]
    platform_mib = memory["platform_mib"]

    def memory_check(baseline: str, label: str) -> Check:
        base = memory[f"{baseline}_mib"]

        def ratio_of(kind: str) -> str:
            return f"{platform_mib[kind] / base[kind]:.2f}x" if base[kind] else "n/a"

        rss_ratio = platform_mib["rss"] / base["rss"]
        return Check(
            f"memory per worker platform/{label}, RSS",
            f"{platform_mib['rss']:.1f} / {base['rss']:.1f} MiB = {rss_ratio:.2f}x "
            f"(USS {platform_mib['uss']:.1f} / {base['uss']:.1f} MiB = {ratio_of('uss')}, "
            f"PSS {ratio_of('pss')})",
            f"<= {TARGET_MEMORY_RATIO:g}x",
            rss_ratio <= TARGET_MEMORY_RATIO,
        )

    platform_rounds = [r["rps"] for r in rounds["platform"]]
    spread = (max(platform_rounds) - min(platform_rounds)) / rps["platform"]
    tracing = [
        Check(
            "tracing off: platform rps across rounds (the run-to-run spread)",
            f"{min(platform_rounds):.0f} to {max(platform_rounds):.0f}, "
            f"spread {spread:.1%} of the median",
        ),
        Check(
            "tracing on, every request sampled, OTLP to a discarding collector: rps",
            f"{rps['traced']:.0f} = {rps['traced'] / rps['platform']:.2f} of tracing off "
            f"({report['tracing']['spans_exported']} spans exported)",
        ),
        Check(
            "tracing on: gunicorn worker CPU per request",
            f"{cpu['traced']:.0f} us against {cpu['platform']:.0f} us off "
            f"(+{cpu['traced'] - cpu['platform']:.0f} us)",
        ),
    ]
    return [
        *tracing,
        Check("rps bare Django JsonResponse", f"{rps['bare']:.0f}"),
        Check("rps DRF alone", f"{rps['drf']:.0f} = {rps['drf'] / rps['bare']:.2f} of bare"),
        Check("rps platform GET /api/v1/info", f"{rps['platform']:.0f}"),
        Check(
            "rps ratio platform/bare",
            f"{ratio:.2f}",
            f">= {TARGET_RPS_RATIO}",
            ratio >= TARGET_RPS_RATIO,
        ),
        Check("failed requests (non-200 or errors)", str(failed), "0", failed == 0),
        Check(
            "gunicorn worker CPU per request",
            f"bare {cpu['bare']:.0f} us, DRF {cpu['drf']:.0f} us, platform {cpu['platform']:.0f} us"
            f" (worker restarts during the rounds: {restarts})",
        ),
        Check(
            "in-process time per request (WSGI app called directly, no gunicorn)",
            f"bare {in_process['bare']:.0f} us, DRF {in_process['drf']:.0f} us, "
            f"platform {in_process['platform']:.0f} us",
        ),
        Check(
            "in-process CPU per request, same calls (without the waits on PostgreSQL/Redis)",
            ", ".join(
                f"{label} {value:.0f} us"
                for label, value in report["per_request_counts"]
                .get("in_process_cpu_us_per_request", {})
                .items()
            ),
        ),
        Check(
            "load generator",
            f"{ceiling['processes']} process x {ceiling['connections']} connections, "
            f"{generator_cpu:.0f} us of its CPU per request under load; ceiling "
            f"{ceiling['rps']:.0f} rps against a trivial server",
        ),
        Check(
            "SQL statements per request, warm worker",
            f"{warm['sql_per_request']:g}" + (f" ({sql_text})" if sql_text else ""),
            f"<= {TARGET_SQL_PER_REQUEST}",
            warm["sql_per_request"] <= TARGET_SQL_PER_REQUEST,
        ),
        Check(
            "SQL statements, first request of a cold worker",
            str(len(report["per_request_counts"]["cold"]["sql"])),
        ),
        Check(
            "Redis commands per request, real workers (MONITOR)",
            f"{monitor['per_request']:.2f} ({redis_text})"
            + (f"; inside Lua: {lua_text}" if lua_text else ""),
        ),
        Check(
            "tenant_create median, 0 existing tenants",
            f"{empty['median']:.3f} s (schema copy {empty['clone_median']:.3f} s)",
            f"<= {TARGET_PROVISION_SECONDS:g} s",
            empty["median"] <= TARGET_PROVISION_SECONDS,
        ),
        Check(
            f"tenant_create median, {full['existing_before']} existing tenants",
            f"{full['median']:.3f} s (schema copy {full['clone_median']:.3f} s)",
            f"<= {TARGET_PROVISION_SECONDS:g} s",
            full["median"] <= TARGET_PROVISION_SECONDS,
        ),
        Check(
            f"tenant_create growth, {full['existing_before']} vs 0 tenants",
            f"{growth:.2f}x (schema copy alone {full['clone_median'] / empty['clone_median']:.2f}x)",
            f"<= {TARGET_PROVISION_GROWTH:g}x, not growing",
            growth <= TARGET_PROVISION_GROWTH,
        ),
        memory_check("bare", "minimal Django (no apps, no middleware, no database)"),
        memory_check(
            "startproject", "startproject Django (default apps and middleware, PostgreSQL)"
        ),
        Check(
            "rps bare Django project in its own gunicorn (one round, after the others)",
            f"{report['bare_server_rps']['rps']:.0f}",
        ),
        Check(
            "rps startproject Django in its own gunicorn (one round)",
            f"{report['startproject_server_rps']['rps']:.0f}",
        ),
    ]


def print_report(report: dict[str, Any]) -> None:
    rounds = report["load"]["rounds"]
    labels = list(rounds)
    print()
    print("Requests per second (200 responses only) per round; ratio = platform/bare:")
    widths = [len(label) + 3 for label in labels]
    print(
        "  round" + "".join(f"{label:>{w}}" for label, w in zip(labels, widths, strict=True)),
        end="",
    )
    print("   ratio")
    for index in range(report["plan"]["rounds"]):
        values = [rounds[label][index]["rps"] for label in labels]
        ratio = rounds["platform"][index]["rps"] / rounds["bare"][index]["rps"]
        cells = "".join(f"{value:>{w}.0f}" for value, w in zip(values, widths, strict=True))
        print(f"  {index + 1:>5}{cells}{ratio:>8.2f}")
    cold = report["per_request_counts"]["cold"]
    print()
    print("First request on a cold worker (what the warm path avoids):")
    for statement in cold["sql"]:
        print(f"  SQL   {statement[:140]}")
    print(f"  Redis {' '.join(cold['redis'])}")
    print()
    print_summary(report, workers=WORKERS)


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = TypeVar("P", bound="DataclassInstance")


def print_summary(report: dict[str, Any], *, workers: int) -> None:
    """The closing block of a load benchmark: how it ran, then one line per check."""
    plan = report["plan"]
    services = report["services"]
    print("=" * 100)
    print(
        f"Summary: medians of {plan['rounds']} interleaved rounds of {plan['round_seconds']:g}s; "
        f"{report['machine']['cpus']} CPUs; gunicorn {workers} sync workers; PostgreSQL "
        f"{services['postgresql']}, Redis {services['redis']} "
        f"({'embedded' if services['embedded'] else 'external'})"
    )
    print("=" * 100)
    for check in report["summary"]:
        print(Check(**check).line())
    print(f"benchmark run time: {report['duration_seconds']:.0f} s")


def load_arguments(description: str | None, quick_help: str) -> argparse.ArgumentParser:
    """The options every load benchmark takes (its Plan's fields), on a new parser."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, help="seconds per round and endpoint")
    parser.add_argument("--connections", type=int, help="concurrent connections (default 8)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 1)")
    return parser


def plan_from_arguments(plan: P, args: argparse.Namespace, **more: Any) -> P:
    """`plan` (a Plan dataclass) with what the options of `load_arguments` (and `more`) set."""
    overrides = {
        "rounds": args.rounds,
        "round_seconds": args.seconds,
        "connections": args.connections,
        "processes": args.processes,
        **more,
    }
    return replace(plan, **{name: value for name, value in overrides.items() if value is not None})


def run_and_save(name: str, run_plan: Any, print_report: Any) -> int:
    """Run a benchmark (`run_plan()` returns its report), print it and write
    bench/results/<name>.json. SIGTERM unwinds like Ctrl-C, so gunicorn and the services
    are stopped either way."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        report = run_plan()
    except KeyboardInterrupt:
        say("interrupted; what was started has been stopped")
        return 130
    print_report(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    output = RESULTS_DIR / f"{name}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    say(f"results written to {output.relative_to(ROOT)}")
    return 0


def main() -> int:
    args = load_arguments(__doc__, "3 rounds of 2s, 20 fillers").parse_args()
    plan = plan_from_arguments(Plan.quick() if args.quick else Plan(), args)
    return run_and_save("foundation", lambda: run(plan), print_report)


def ensure_venv() -> None:
    """Continue in the project's virtual environment (gunicorn, psutil... live there),
    running the same script again (the one started: this module serves several)."""
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        return
    if not VENV_PYTHON.exists():
        sys.exit("No .venv yet: `python3 run.py check` creates it; then run this again.")
    script = str(Path(sys.argv[0]).resolve())
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])  # noqa: S606


if __name__ == "__main__":
    ensure_venv()
    sys.exit(main())
