"""Identity benchmark: authenticated requests, the users list and sign-in, against baselines.

Run it from the repository root:

    python3 run.py bench identity                 # about 4 minutes on 2 cores
    python3 run.py bench identity --quick         # shorter rounds: a smoke test
    .venv/bin/python bench/identity.py            # the same, without run.py

The harness is the foundation benchmark's (`bench/foundation.py`, whose
functions this imports): embedded PostgreSQL and Redis under
`<PLATFORM_LOCAL_DIR or .local>/bench/` when DATABASE_URL / REDIS_URL are
unset, its own database `platform_bench` (dropped and created again), Redis
keys under `platform-bench`, `migrate_schemas` and `collectstatic` as a
deploy runs them, and gunicorn started as the production image starts it
(`gunicorn.conf.py`: 2 sync workers, app preloaded, JSON logs) with
`bench.settings` (production settings) and `bench.wsgi` (the platform
unchanged, plus reference views under `/bench/` with no platform middleware).
Logs go to `<local dir>/bench/identity/logs/`. For this run the server (and
every Django step) also gets: AUTH_RATE_LOGIN_IP and AUTH_RATE_LOGIN_ACCOUNT
of 100000000/m (the sign-in limiter counts every attempt in Redis, as in
production, but never refuses one), API_RATE_LIMIT likewise (foundation's),
JWT_ACCESS_MINUTES=60 (the one token outlives the run) and
BENCH_REFERENCE_SCHEMA (the tenant schema of the users-list baseline).

Setup (`bench/identity_tasks.py setup`): a tenant made by `tenant_create`, a
staff user whose password is hashed by the production hasher
(`apps.accounts.hashers.PlatformArgon2PasswordHasher`, the first of
PASSWORD_HASHERS), and 10,000 more users (bulk-inserted with one
precomputed hash: the list never hashes), then VACUUM ANALYZE. The access
token comes from a real sign-in in that step (`services.sessions.session_login`, what
the login API calls), so the workers sign nobody in before the sign-in part
measures their memory; the load generator sends it as
`Authorization: Bearer ...`.

What it measures (the acceptance text):

1. `GET /api/v1/users/me` requests per second against the bare Django
   `JsonResponse` view (`/bench/bare`) and DRF alone (`/bench/drf`), in the
   same gunicorn, same run; target >= 0.4 of bare.
2. `GET /api/v1/users?page_size=20`, without and with `search` (a common
   first-name prefix matching a few per cent of the users), against a plain
   DRF `ListAPIView` of the same 20 rows (`/bench/users`, see
   `bench/reference_identity.py` for exactly what it includes: same queryset,
   search filter and rank ordering, a DRF ModelSerializer of the same fields;
   no tenancy lookup, auth, rate limiting, pagination envelope or count);
   target >= 0.8. Printed beside it, not the target: the same reference views
   with the platform's own `UserOutput` (`/bench/users-platform-serializer`).
   All nine endpoints (bare, DRF, /users/me, reference list, list, reference
   search, search, and the two stricter references) are loaded in interleaved
   rounds after a warm-up; medians are compared. Load: `bench/loadgen.py` (one connection per
   request, as gunicorn's sync worker closes each), its own CPU per request
   and its ceiling against a trivial server printed.
3. SQL statements per request (psycopg level, a separate process calling the
   same WSGI application) for /users/me and the list at page_size 1, 20 and
   100 with and without search (constant in page size is the target), and
   Redis commands per authenticated request seen by the Redis server (MONITOR)
   while the real gunicorn answers: the gateway's rate-limit counter and the
   token's revocation state in one round trip is the target. The window starts
   on warm workers; the tenant-cache refresh each worker makes once every
   TENANT_CACHE_LOCAL_SECONDS (a GET) is printed apart, at most one per worker
   and period (`foundation.redis_monitor`).
4. Sign-in: `POST /api/v1/auth/login` through the same gunicorn (2 workers),
   one connection at a time (so a request's time is the time of one sign-in),
   in rounds, each bracketed by timing `PlatformArgon2PasswordHasher.verify`
   alone (a few calls in this process just before the round and a few just
   after, the server idle); each round's ratio is its time per sign-in over
   the median of its bracketing verifies, and the median of the rounds'
   ratios is compared with the target: time per sign-in <= 1.3x one verify.
   (A shared VM's speed drifts by a third within seconds; a ratio of pooled
   medians taken at different moments moved with it.) Then 4 concurrent connections: sign-ins
   per second, per core (per CPU-second of the workers) and per worker's peak
   RSS (Linux's VmHWM, reset before, plus sampling) against the same worker
   idle. The hasher's parameters are read from the class and checked against
   OWASP's minimum (Argon2id, m >= 19 MiB, t >= 2); the memory one hash takes
   with them and with Django's default Argon2 parameters (100 MiB, p=8) is
   measured in fresh processes with argon2-cffi's low-level API.

The summary (figures, targets, PASS/FAIL) is printed and written to
`bench/results/identity.json`. Exit status 0 whenever the measurement ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import foundation  # noqa: E402
from bench.foundation import (  # noqa: E402
    PLATFORM_CONFIG,
    Check,
    Endpoint,
    Environment,
    Server,
    http_exchange,
    load,
    load_rounds,
    redis_monitor,
    say,
)

TENANT = "bench-identity"
SEARCH = "mar"  # a common first-name prefix: Maria, Mark, Margaret, Martha, Marie, Martinez...
UNLIMITED = "100000000/m"  # counted in Redis, never reached
OWN_SERIALIZER = "/bench/users-platform-serializer"

# Targets from the acceptance text.
TARGET_ME_RATIO = 0.4
TARGET_LIST_RATIO = 0.8
TARGET_LOGIN_RATIO = 1.3
TARGET_REDIS_ROUND_TRIPS = 1
OWASP_ARGON2_MEMORY_KIB = 19 * 1024
OWASP_ARGON2_TIME_COST = 2
OWASP_PBKDF2_ITERATIONS = 600_000
DJANGO_DEFAULT_ARGON2 = {"time_cost": 2, "memory_cost": 102_400, "parallelism": 8}


@dataclass(frozen=True)
class Plan:
    rounds: int = 5
    round_seconds: float = 3.0
    warmup_seconds: float = 1.0
    connections: int = 8
    processes: int = 1
    users: int = 10_000
    login_rounds: int = 9
    login_seconds: float = 1.5
    verifies_per_round: int = 16
    login_concurrency: int = 4
    concurrent_login_rounds: int = 2
    concurrent_login_seconds: float = 4.0
    monitor_requests: int = 200

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            rounds=3,
            round_seconds=1.5,
            login_rounds=5,
            login_seconds=1.0,
            verifies_per_round=8,
            concurrent_login_rounds=1,
            concurrent_login_seconds=2.0,
            monitor_requests=60,
        )

    def load_plan(self, connections: int | None = None) -> foundation.Plan:
        """The foundation's load settings (what its `load` / `load_rounds` read)."""
        return replace(
            foundation.Plan(),
            rounds=self.rounds,
            round_seconds=self.round_seconds,
            warmup_seconds=self.warmup_seconds,
            connections=connections or self.connections,
            processes=self.processes,
        )


def identity_task(environment: Environment, *args: str) -> dict[str, Any]:
    output = foundation.run_step(
        environment, f"identity-{args[0]}", "-m", "bench.identity_tasks", *args
    )
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------ worker memory


def _proc_status_kib(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _peak_reset(pid: int) -> bool:
    """Reset Linux's peak RSS (VmHWM) of `pid` to its current RSS (clear_refs, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak RSS per worker over a window: VmHWM (reset at the start) where Linux has it,
    and the highest RSS seen by sampling every few milliseconds (a lower bound) anyway."""

    def __init__(self, server: Server, interval: float = 0.005) -> None:
        self.server = server
        self.interval = interval
        self.pids = [worker.pid for worker in server.workers()]
        self.sampled: dict[int, int] = dict.fromkeys(self.pids, 0)
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        processes = {pid: psutil.Process(pid) for pid in self.pids}
        while not self._stop.is_set():
            for pid, process in processes.items():
                with contextlib.suppress(psutil.Error):
                    self.sampled[pid] = max(self.sampled[pid], process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.hwm_reset = all([_peak_reset(pid) for pid in self.pids])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def result(self) -> list[dict[str, Any]]:
        workers = []
        for pid in self.pids:
            hwm = _proc_status_kib(pid, "VmHWM") if self.hwm_reset else None
            rss = _proc_status_kib(pid, "VmRSS")
            sampled = self.sampled[pid] / 2**20
            workers.append(
                {
                    "pid": pid,
                    "peak_mib": round(hwm / 1024, 1) if hwm is not None else round(sampled, 1),
                    "peak_source": "VmHWM" if hwm is not None else "sampled",
                    "sampled_peak_mib": round(sampled, 1),
                    "rss_now_mib": round(rss / 1024, 1) if rss is not None else None,
                }
            )
        return workers


def idle_memory(server: Server, seconds: float = 1.0) -> list[dict[str, Any]]:
    with PeakMemory(server) as window:
        time.sleep(seconds)
    return window.result()


# ------------------------------------------------------------------ sign-in


def verify_alone(password: str, encoded: str, count: int) -> list[float]:
    """Seconds of `PlatformArgon2PasswordHasher.verify` (what check_password runs), one by one."""
    from apps.accounts.hashers import PlatformArgon2PasswordHasher

    hasher = PlatformArgon2PasswordHasher()
    if not hasher.verify(password, encoded):
        raise RuntimeError("the production hasher refused the staff user's password")
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        hasher.verify(password, encoded)
        seconds.append(time.perf_counter() - started)
    return seconds


def login_rounds(login: Endpoint, plan: Plan, password: str, encoded: str) -> dict[str, Any]:
    """Sign-ins one at a time, interleaved with the verify alone; then concurrent sign-ins."""
    sequential = plan.load_plan(connections=1)
    say(f"sign-in warm-up ({plan.warmup_seconds:g}s, 1 connection)")
    load(login, sequential, plan.warmup_seconds)
    rounds: list[dict[str, Any]] = []
    half = max(1, plan.verifies_per_round // 2)
    for index in range(1, plan.login_rounds + 1):
        # Bracketed: half the verifies before the round, half after, so a machine whose
        # speed drifts (a shared VM's often does, by a third within seconds) drifts
        # under both sides of the round's ratio alike.
        verify = verify_alone(password, encoded, half)
        result = load(login, sequential, plan.login_seconds)
        verify += verify_alone(password, encoded, half)
        done = result["ok"]
        per_request_ms = result["duration_s"] / done * 1000 if done else float("inf")
        verify_ms = statistics.median(verify) * 1000
        rounds.append(
            {
                **result,
                "ms_per_request": round(per_request_ms, 3),
                "verify_ms": [round(v * 1000, 3) for v in verify],
                "verify_median_ms": round(verify_ms, 3),
                "ratio": round(per_request_ms / verify_ms, 3),
            }
        )
        say(
            f"sign-in round {index}/{plan.login_rounds}: {per_request_ms:.1f} ms per sign-in "
            f"(p50 {result['latency_p50_ms']:.1f} ms), verify alone {verify_ms:.1f} ms, "
            f"ratio {per_request_ms / verify_ms:.2f}"
            + (f" ({result['non_200'] + result['errors']} failed)" if done != result["ok"] else "")
        )

    server = login.server
    say("workers idle (peak RSS over 1s), then concurrent sign-ins")
    idle = idle_memory(server)
    concurrent_plan = plan.load_plan(connections=plan.login_concurrency)
    concurrent: list[dict[str, Any]] = []
    with PeakMemory(server) as window:
        for _ in range(plan.concurrent_login_rounds):
            concurrent.append(load(login, concurrent_plan, plan.concurrent_login_seconds))
    peak = window.result()
    for result in concurrent:
        say(
            f"  {plan.login_concurrency} connections: {result['rps']:.1f} sign-ins/s, "
            f"{result['worker_cpu_us_per_request'] / 1000:.1f} ms of worker CPU each"
        )
    return {"sequential": rounds, "concurrent": concurrent, "idle": idle, "peak": peak}


# ------------------------------------------------------------------ the run


def same_rows(endpoints: list[Endpoint]) -> None:
    """The references answer exactly the platform's items (same rows, same JSON per row)."""
    by_label = {endpoint.label: endpoint for endpoint in endpoints}

    def items(label: str) -> Any:
        endpoint = by_label[label]
        _, body = http_exchange(
            endpoint.server.port, endpoint.path, endpoint.host, headers=endpoint.headers
        )
        data = json.loads(body)
        return data["data"]["items"] if isinstance(data, dict) else data

    for ours, references in (("list", ("ref_list", "own_list")),
                             ("search", ("ref_search", "own_search"))):  # fmt: skip
        expected = items(ours)
        for reference in references:
            if items(reference) != expected:
                raise RuntimeError(f"{reference} does not answer the rows of {ours}")


def login_token(server: Server, host: str, email: str, password: str) -> str:
    body = json.dumps({"email": email, "password": password}).encode()
    status, payload = http_exchange(
        server.port,
        "/api/v1/auth/login",
        host,
        timeout=10,
        method="POST",
        headers=(("Content-Type", "application/json"),),
        body=body,
    )
    if status != 200:
        raise RuntimeError(f"POST /api/v1/auth/login answered {status}: {payload[:300]!r}")
    document = json.loads(payload)
    data = document.get("data", document)
    return str(data["access_token"])


def run(plan: Plan) -> dict[str, Any]:
    started = time.monotonic()
    cpus = os.cpu_count() or 1
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": cpus,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "plan": asdict(plan),
        "workers": foundation.WORKERS,
    }
    password = secrets.token_urlsafe(18)
    with contextlib.ExitStack() as stack:
        environment = foundation.start_services(stack)
        # This benchmark's logs and control sockets apart from the foundation's.
        environment.local_dir = environment.local_dir / "identity"
        environment.local_dir.mkdir(parents=True, exist_ok=True)
        for old_log in environment.logs().glob("*.log"):
            old_log.unlink()
        environment.env.update(
            {
                "AUTH_RATE_LOGIN_IP": UNLIMITED,
                "AUTH_RATE_LOGIN_ACCOUNT": UNLIMITED,
                "API_RATE_LIMIT": UNLIMITED,
                "JWT_ACCESS_MINUTES": "60",
            }
        )
        say(
            "services: "
            + (
                f"embedded {' and '.join(environment.embedded)}"
                if environment.embedded
                else "from DATABASE_URL / REDIS_URL"
            )
            + f"; database '{foundation.DATABASE_NAME}' (dropped and created again); "
            + f"logs in {environment.logs()}"
        )
        report["services"] = {
            "embedded": environment.embedded,
            "postgresql": foundation.recreate_database(environment),
            "redis": foundation.reset_redis(environment),
        }
        if "redis" not in environment.embedded:
            stack.callback(foundation.reset_redis, environment)
        say("migrate_schemas and collectstatic, as a deploy does")
        foundation.run_step(
            environment, "migrate", "manage.py", "migrate_schemas", "--noinput", "-v", "0"
        )
        foundation.run_step(
            environment, "collectstatic", "manage.py", "collectstatic", "--noinput", "-v", "0"
        )

        say("load generator ceiling, against a trivial server on this machine")
        ceiling, what = foundation.loadgen.self_test(2.0, plan.connections, plan.processes)
        report["generator_ceiling"] = {**ceiling.summary(), "server": what}
        say(f"  {ceiling.rps:.0f} rps, {ceiling.generator_cpu_us_per_request:.0f} us per request")

        say(f"setup: tenant '{TENANT}', its staff user, {plan.users} more users")
        setup = identity_task(
            environment,
            *("setup", "--slug", TENANT, "--users", str(plan.users)),
            # One argument with "=": a random password may begin with "-".
            *("--search", SEARCH, f"--password={password}"),
        )
        report["setup"] = setup
        say(
            f"  {setup['live_users']} live users ({setup['insert_seconds']:.1f}s to insert), "
            f"'{SEARCH}' matches {setup['search_matches']}; check_password "
            f"{setup['check_password_median_ms']:.1f} ms"
        )
        say(f"  VACUUM ANALYZE ({foundation.vacuum_analyze(environment):.1f}s)")
        say("Argon2 memory per hash in fresh processes: configured vs Django's default parameters")
        facts = setup["hasher"]
        report["argon2_memory"] = {
            "configured": identity_task(
                environment,
                "argon2-memory",
                *("--time-cost", str(facts.get("time_cost", 2))),
                *("--memory-cost", str(facts.get("memory_cost", 0))),
                *("--parallelism", str(facts.get("parallelism", 1))),
            ),
            "django_default": identity_task(
                environment,
                "argon2-memory",
                *("--time-cost", str(DJANGO_DEFAULT_ARGON2["time_cost"])),
                *("--memory-cost", str(DJANGO_DEFAULT_ARGON2["memory_cost"])),
                *("--parallelism", str(DJANGO_DEFAULT_ARGON2["parallelism"])),
            ),
        }

        host = setup["host"]
        environment.env["BENCH_REFERENCE_SCHEMA"] = setup["schema"]
        say(
            f"gunicorn as the image runs it (gunicorn.conf.py, {foundation.WORKERS} sync workers, "
            "production settings)"
        )
        server = foundation.start_server(
            stack, environment, "platform", "bench.wsgi:application", PLATFORM_CONFIG
        )
        token = setup["access_token"]
        auth = (("Authorization", f"Bearer {token}"),)
        page = "page_size=20"
        endpoints = [
            Endpoint("bare", server, "/bench/bare", "localhost"),
            Endpoint("drf", server, "/bench/drf", "localhost"),
            Endpoint("me", server, "/api/v1/users/me", host, headers=auth),
            Endpoint("ref_list", server, f"/bench/users?{page}", "localhost"),
            Endpoint("list", server, f"/api/v1/users?{page}", host, headers=auth),
            Endpoint("ref_search", server, f"/bench/users?{page}&search={SEARCH}", "localhost"),
            Endpoint("search", server, f"/api/v1/users?{page}&search={SEARCH}", host, headers=auth),
            # The same reference views with the platform's own UserOutput (the stricter lines).
            Endpoint("own_list", server, f"{OWN_SERIALIZER}?{page}", "localhost"),
            Endpoint("own_search", server, f"{OWN_SERIALIZER}?{page}&search={SEARCH}", "localhost"),
        ]
        for endpoint in endpoints:
            status = endpoint.request()
            if status != 200:
                raise RuntimeError(f"{endpoint.label}: GET {endpoint.path} answered {status}")
        same_rows(endpoints)
        login = Endpoint(
            "login",
            server,
            "/api/v1/auth/login",
            host,
            method="POST",
            headers=(("Content-Type", "application/json"),),
            body=json.dumps({"email": setup["login_email"], "password": password}).encode(),
        )

        say("SQL statements and Redis commands per request (same WSGI app, separate process)")
        report["per_request_counts"] = identity_task(
            environment,
            *("count", "--host", host, "--schema", setup["schema"], "--token", token),
            *("--search", SEARCH, "--email", setup["login_email"], f"--password={password}"),
        )

        report["load"] = {"rounds": load_rounds(endpoints, plan.load_plan())}

        say("Redis MONITOR while gunicorn answers /users/me and the list")
        report["redis_monitor"] = {
            "me": redis_monitor(environment, endpoints[2], plan.monitor_requests),
            "list": redis_monitor(environment, endpoints[4], plan.monitor_requests // 2),
        }
        # The workers have served everything but a sign-in (the token came from the setup step).
        report["memory_before_any_login"] = idle_memory(server)
        check = login_token(server, host, setup["login_email"], password)
        if not check:
            raise RuntimeError("POST /api/v1/auth/login gave no access token")
        say("Redis MONITOR while gunicorn answers sign-ins")
        report["redis_monitor"]["login"] = redis_monitor(environment, login, 20)
        report["login"] = login_rounds(login, plan, password, setup["login_hash"])
        server.stop()

    report["duration_seconds"] = round(time.monotonic() - started, 1)
    report["summary"] = [asdict(check) for check in summarize(report)]
    return report


# ------------------------------------------------------------------ the summary


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def _sql_text(counts: dict[str, Any]) -> str:
    requests = counts["requests"]
    return "; ".join(
        f"{n / requests:g} x {statement[:90]}" for statement, n in counts["sql"].items()
    )


def sql_kinds(counts: dict[str, Any]) -> dict[str, float]:
    """Statements per request of GET /users/me by what they are for: Django's connection
    health check (CONN_HEALTH_CHECKS), the view's own read of the user (every column,
    password included: `selectors.user_get`), the authentication's (a session, or the
    user's fields a request needs: `authentication._load_user`), and anything else."""
    kinds = dict.fromkeys(
        ("connection health check", "view read of the user", "authentication", "other"), 0.0
    )
    for statement, n in counts["sql"].items():
        if statement.strip().upper() == "SELECT 1":
            kind = "connection health check"
        elif '"accounts_session"' in statement:
            kind = "authentication"
        elif 'FROM "accounts_user"' in statement:
            password = '"accounts_user"."password"' in statement
            kind = "view read of the user" if password else "authentication"
        else:
            kind = "other"
        kinds[kind] += n / counts["requests"]
    return kinds


def _owasp(facts: dict[str, Any]) -> tuple[bool, str]:
    if facts["algorithm"] == "argon2":
        stored = facts.get("stored", {})
        memory = int(stored.get("memory_cost", facts.get("memory_cost", 0)))
        time_cost = int(stored.get("time_cost", facts.get("time_cost", 0)))
        parallelism = stored.get("parallelism", facts.get("parallelism"))
        ok = (
            facts.get("variety") == "argon2id"
            and memory >= OWASP_ARGON2_MEMORY_KIB
            and time_cost >= OWASP_ARGON2_TIME_COST
        )
        return ok, (
            f"{facts.get('variety')}, m={memory} KiB ({memory / 1024:g} MiB), t={time_cost}, "
            f"p={parallelism} ({facts['default_hasher']})"
        )
    if facts["algorithm"].startswith("pbkdf2"):
        iterations = int(facts.get("iterations", 0))
        return (
            iterations >= OWASP_PBKDF2_ITERATIONS,
            f"{facts['algorithm']}, {iterations} iterations",
        )
    return False, f"{facts['algorithm']}: not a hasher OWASP's minimum is given for here"


def summarize(report: dict[str, Any]) -> list[Check]:
    rounds = report["load"]["rounds"]
    rps = {label: _median(runs, "rps") for label, runs in rounds.items()}
    cpu = {label: _median(runs, "worker_cpu_us_per_request") for label, runs in rounds.items()}
    failed = sum(r["non_200"] + r["errors"] for runs in rounds.values() for r in runs)
    restarts = sum(r["worker_restarts"] for runs in rounds.values() for r in runs)
    generator_cpu = _median(rounds["bare"], "generator_cpu_us_per_request")
    ceiling = report["generator_ceiling"]
    counts = report["per_request_counts"]
    in_process = counts["in_process_us_per_request"]
    setup = report["setup"]
    monitor = report["redis_monitor"]

    me_ratio = rps["me"] / rps["bare"]
    list_ratio = rps["list"] / rps["ref_list"]
    search_ratio = rps["search"] / rps["ref_search"]

    me_counts = counts["me"]
    me_kinds = sql_kinds(me_counts)

    def monitor_text(entry: dict[str, Any]) -> str:
        by = ", ".join(f"{v:.2f} {k}" for k, v in entry["by_command"].items())
        lua = ", ".join(f"{v:.2f} {k}" for k, v in entry["inside_lua_per_request"].items())
        periodic = entry.get("periodic_tenant_cache_refreshes", 0)
        return (
            f"{entry['per_request']:.2f} ({by})"
            + (f"; inside Lua: {lua}" if lua else "")
            + (
                f"; set apart: {periodic} tenant-cache refresh(es) (a GET per worker every "
                f"{foundation.TENANT_CACHE_LOCAL_SECONDS:g} s) in the {entry['window_seconds']} s "
                "window"
                if periodic
                else ""
            )
        )

    login = report["login"]
    sequential = login["sequential"]
    login_ms = _median(sequential, "ms_per_request")
    login_p50 = _median(sequential, "latency_p50_ms")
    verify_ms = statistics.median(v for r in sequential for v in r["verify_ms"])
    pooled_ratio = login_ms / verify_ms
    # The headline: each round's sign-ins against the verifies bracketing that round.
    login_ratio = statistics.median(r["ratio"] for r in sequential)
    login_cpu_ms = _median(sequential, "worker_cpu_us_per_request") / 1000
    concurrent = login["concurrent"]
    concurrent_rps = _median(concurrent, "rps")
    concurrent_cpu_us = _median(concurrent, "worker_cpu_us_per_request")
    login_failed = sum(r["non_200"] + r["errors"] for r in sequential + concurrent)
    cpus = report["machine"]["cpus"]
    idle = {w["pid"]: w for w in login["idle"]}
    first = {w["pid"]: w for w in report["memory_before_any_login"]}
    peak_text = "; ".join(
        f"worker {w['pid']}: {first[w['pid']]['peak_mib']:.1f} MiB idle before any sign-in, "
        f"peak {w['peak_mib']:.1f} MiB ({w['peak_source']}) during them "
        f"(+{w['peak_mib'] - first[w['pid']]['peak_mib']:.1f}), "
        f"{idle[w['pid']]['peak_mib']:.1f} MiB idle between sign-in rounds"
        for w in login["peak"]
        if w["pid"] in first and w["pid"] in idle
    )
    growths = [
        w["peak_mib"] - first[w["pid"]]["peak_mib"] for w in login["peak"] if w["pid"] in first
    ]
    growth = max(growths) if growths else float("nan")
    facts = setup["hasher"]
    owasp_ok, owasp_text = _owasp(facts)
    memory = report["argon2_memory"]
    configured, default = memory["configured"], memory["django_default"]

    def sql_pair(label: str) -> tuple[float, float, float]:
        return (
            counts[f"{label}_1"]["sql_per_request"],
            counts[f"{label}_20"]["sql_per_request"],
            counts[f"{label}_100"]["sql_per_request"],
        )

    list_sql = sql_pair("list")
    search_sql = sql_pair("search")

    return [
        Check("rps bare Django JsonResponse", f"{rps['bare']:.0f}"),
        Check("rps DRF alone", f"{rps['drf']:.0f} = {rps['drf'] / rps['bare']:.2f} of bare"),
        Check("rps GET /api/v1/users/me (Bearer token)", f"{rps['me']:.0f}"),
        Check(
            "rps ratio /users/me / bare Django",
            f"{me_ratio:.3f}",  # three places: a pass or a fail is often in the third
            f">= {TARGET_ME_RATIO}",
            me_ratio >= TARGET_ME_RATIO,
        ),
        Check(
            f"rps users list, page_size=20 ({setup['live_users']} live users): platform / plain "
            "DRF ListAPIView",
            f"{rps['list']:.0f} / {rps['ref_list']:.0f} = {list_ratio:.2f}",
            f">= {TARGET_LIST_RATIO}",
            list_ratio >= TARGET_LIST_RATIO,
        ),
        Check(
            f"rps users list, page_size=20, search={SEARCH!r} ({setup['search_matches']} "
            "matches): platform / plain DRF ListAPIView",
            f"{rps['search']:.0f} / {rps['ref_search']:.0f} = {search_ratio:.2f}",
            f">= {TARGET_LIST_RATIO}",
            search_ratio >= TARGET_LIST_RATIO,
        ),
        Check(
            "  stricter, not the target: the same reference views with the platform's own "
            "UserOutput instead of a ModelSerializer: list, search",
            f"{rps['list']:.0f} / {rps['own_list']:.0f} = {rps['list'] / rps['own_list']:.2f}, "
            f"{rps['search']:.0f} / {rps['own_search']:.0f} = "
            f"{rps['search'] / rps['own_search']:.2f}",
        ),
        Check(
            "failed requests in the load rounds (non-200 or errors)", str(failed), "0", failed == 0
        ),
        Check(
            "gunicorn worker CPU per request (us)",
            ", ".join(f"{label} {value:.0f}" for label, value in cpu.items())
            + f" (worker restarts during the rounds: {restarts})",
        ),
        Check(
            "in-process time per request, WSGI app called directly (us)",
            ", ".join(f"{label} {value:.0f}" for label, value in in_process.items()),
        ),
        Check(
            "in-process CPU per request, same calls (us; without the waits on PostgreSQL/Redis)",
            ", ".join(
                f"{label} {value:.0f}"
                for label, value in counts.get("in_process_cpu_us_per_request", {}).items()
            ),
        ),
        Check(
            "load generator",
            f"{ceiling['processes']} process x {ceiling['connections']} connections, "
            f"{generator_cpu:.0f} us of its CPU per request under load; ceiling "
            f"{ceiling['rps']:.0f} rps against a trivial server",
        ),
        Check(
            "SQL statements per GET /users/me, warm worker",
            f"{me_counts['sql_per_request']:g}: "
            + ", ".join(f"{kind} {n:g}" for kind, n in me_kinds.items() if n)
            + f" ({_sql_text(me_counts) or 'none'})",
        ),
        Check(
            "SQL statements of the authentication per GET /users/me (Redis state cached)",
            f"{me_kinds['authentication']:g}",
            "0 (the cache answers)",
            me_kinds["authentication"] == 0,
        ),
        Check(
            "reads of the user per GET /users/me, authentication and view together",
            f"{me_kinds['authentication'] + me_kinds['view read of the user']:g}",
            "0: the user should not cost a query when a cache can answer",
            me_kinds["authentication"] + me_kinds["view read of the user"] == 0,
        ),
        Check(
            "SQL statements per list request, page_size 1 / 20 / 100",
            f"{list_sql[0]:g} / {list_sql[1]:g} / {list_sql[2]:g} ({_sql_text(counts['list_20'])})",
            "constant in page size",
            list_sql[0] == list_sql[1] == list_sql[2],
        ),
        Check(
            "SQL statements per list request with search, page_size 1 / 20 / 100",
            f"{search_sql[0]:g} / {search_sql[1]:g} / {search_sql[2]:g} "
            f"({_sql_text(counts['search_20'])})",
            "constant in page size",
            search_sql[0] == search_sql[1] == search_sql[2],
        ),
        Check(
            "Redis commands per GET /users/me, real workers (MONITOR)",
            monitor_text(monitor["me"]),
            f"{TARGET_REDIS_ROUND_TRIPS} round trip (gateway counter + revocation state)",
            monitor["me"]["per_request"] <= TARGET_REDIS_ROUND_TRIPS,
        ),
        Check("Redis commands per list request (MONITOR)", monitor_text(monitor["list"])),
        Check(
            "Redis commands per sign-in (MONITOR)",
            monitor_text(monitor["login"]),
        ),
        Check(
            "SQL statements per sign-in",
            f"{counts['login']['sql_per_request']:g} ({_sql_text(counts['login'])})",
        ),
        Check(
            "sign-in: time per request, 1 connection / one verify alone",
            f"median of {len(sequential)} rounds' ratios (each round against the verifies "
            f"bracketing it) {login_ratio:.3f}x (rounds "
            f"{min(r['ratio'] for r in sequential):.2f} to {max(r['ratio'] for r in sequential):.2f}); "
            f"pooled medians {login_ms:.1f} ms (p50 latency {login_p50:.1f} ms) / "
            f"{verify_ms:.1f} ms = {pooled_ratio:.2f}x; worker CPU per sign-in "
            f"{login_cpu_ms:.1f} ms = {login_cpu_ms / verify_ms:.2f}x",
            f"<= {TARGET_LOGIN_RATIO}x",
            login_ratio <= TARGET_LOGIN_RATIO,
        ),
        Check(
            "check_password alone (Django's configured hashers, setup step)",
            f"{setup['check_password_median_ms']:.1f} ms",
        ),
        Check(
            f"sign-ins per second, {report['plan']['login_concurrency']} concurrent connections, "
            f"{report['workers']} workers on {cpus} CPUs",
            f"{concurrent_rps:.1f}/s = {concurrent_rps / cpus:.1f} per core; "
            f"{1e6 / concurrent_cpu_us:.1f} per CPU-second of the workers "
            f"({concurrent_cpu_us / 1000:.1f} ms of worker CPU each)",
        ),
        Check("failed sign-ins", str(login_failed), "0", login_failed == 0),
        Check(
            f"worker RSS, {report['plan']['login_concurrency']} concurrent sign-ins "
            f"({report['workers']} sync workers: one hash at a time each)",
            (peak_text or "workers were recycled in between: see the JSON")
            + f"; largest growth {growth:.1f} MiB (one hash: "
            f"{configured['memory_from_parameters_mib']:.0f} MiB)",
        ),
        Check(
            "password hasher parameters",
            owasp_text,
            "OWASP minimum: Argon2id m >= 19 MiB, t >= 2 (or PBKDF2 >= 600,000)",
            owasp_ok,
        ),
        Check(
            "memory of one Argon2 hash (fresh process, argon2-cffi low-level)",
            f"configured m={configured['memory_cost_kib']} KiB p={configured['parallelism']}: "
            f"{configured['memory_from_parameters_mib']:.0f} MiB by the parameters, peak RSS "
            f"+{configured['peak_rss_growth_mib']:.1f} MiB, {configured['seconds'] * 1000:.0f} ms; "
            f"Django's default m={default['memory_cost_kib']} KiB p={default['parallelism']}: "
            f"{default['memory_from_parameters_mib']:.0f} MiB, peak RSS "
            f"+{default['peak_rss_growth_mib']:.1f} MiB, {default['seconds'] * 1000:.0f} ms",
        ),
    ]


def print_report(report: dict[str, Any]) -> None:
    rounds = report["load"]["rounds"]
    labels = list(rounds)
    print()
    print("Requests per second (200 responses only) per round:")
    widths = [max(len(label) + 2, 8) for label in labels]
    header = "".join(f"{label:>{w}}" for label, w in zip(labels, widths, strict=True))
    print(f"  round{header}   me/bare  list/ref  search/ref")
    for index in range(report["plan"]["rounds"]):
        values = {label: rounds[label][index]["rps"] for label in labels}
        cells = "".join(f"{values[label]:>{w}.0f}" for label, w in zip(labels, widths, strict=True))
        print(
            f"  {index + 1:>5}{cells}{values['me'] / values['bare']:>10.2f}"
            f"{values['list'] / values['ref_list']:>10.2f}"
            f"{values['search'] / values['ref_search']:>12.2f}"
        )
    print()
    print("Sign-in rounds (1 connection), each after timing the verify alone:")
    for index, entry in enumerate(report["login"]["sequential"], 1):
        print(
            f"  {index:>5}  {entry['ms_per_request']:7.1f} ms per sign-in, verify "
            f"{entry['verify_median_ms']:5.1f} ms, ratio {entry['ratio']:.2f}"
        )
    counts = report["per_request_counts"]
    print()
    print("First request on this process (what the warm path avoids), /users/me:")
    for statement in counts["me"]["first_request"]["sql"]:
        print(f"  SQL   {statement[:140]}")
    print(f"  Redis {' '.join(counts['me']['first_request']['redis'])}")
    print()
    foundation.print_summary(report, workers=report["workers"])


def main() -> int:
    parser = foundation.load_arguments(__doc__, "3 short rounds: a smoke test")
    parser.add_argument("--users", type=int, help="users in the tenant (default 10000)")
    args = parser.parse_args()
    plan = foundation.plan_from_arguments(
        Plan.quick() if args.quick else Plan(), args, users=args.users
    )
    return foundation.run_and_save("identity", lambda: run(plan), print_report)


if __name__ == "__main__":
    foundation.ensure_venv()
    sys.exit(main())
