"""Scale benchmark: a thousand tenants, and the stock stack side by side.

    python3 run.py bench scale            # about 20 minutes on 2 cores
    python3 run.py bench scale --quick    # 100 tenants, shorter rounds: about 3 minutes
    .venv/bin/python bench/scale.py       # the same, without run.py

The harness is the foundation benchmark's (`bench/foundation.py`): embedded
PostgreSQL and Redis under `<PLATFORM_LOCAL_DIR or .local>/bench/` when
DATABASE_URL / REDIS_URL are unset, its own database (dropped and created
again), production settings (`bench.settings_scale`: `bench.settings` plus
`bench.scale_app`, a tenant app whose migrations the deploy step applies),
gunicorn as the image runs it (`gunicorn.conf.py`, 2 sync workers, app
preloaded), and `bench/loadgen.py` for the load (one connection per request;
a list of Host / Authorization pairs taken in turn spreads it over tenants).

Setup: `migrate_schemas`, then N tenants (1,000; 100 with --quick) made by the
provisioning service `tenant_create` in two processes at once (the admins'
password hashing made cheap: setup), 5 users each (the admin and 4
bulk-inserted) and one access token per tenant from `session_start` (a
session as a sign-in makes it, without the password hash). Building them
takes about 0.2 s per tenant here; a saved dump would restore faster but
would not be what a deployment does, so it is made every run.

What it measures, each figure printed beside its target:

1. Deploy migrations: one additive migration of `bench.scale_app` (a
   nullable column and an index: an expand step) across every tenant schema,
   by the platform's default (`migrate_schemas` as a deploy runs it), then
   (not with --quick) twice more with one new migration each, for
   comparison: django-tenants' standard executor (`--executor standard`,
   sequential) and its multiprocessing executor (`--executor
   multiprocessing`, TENANT_MULTIPROCESSING_MAX_PROCESSES=2). While each
   runs, `GET /api/v1/users/me` is loaded across the tenants: requests
   answered and failed are counted. Target: the default <= 60 s for 1,000
   tenants, and no failed request.
2. Requests with many tenants: `GET /api/v1/users/me` with each request's
   tenant and token taken in turn from 1, 100 and 1,000 tenants, in 5
   interleaved rounds of the same run (2 with --quick), after a warm-up long
   enough for every token to reach both workers. Target: 1,000-tenant rps >= 0.9 of the
   1-tenant rps, the median of the rounds' ratios (see 7). Printed beside
   it: the CPU time and SQL statements per request of the same requests made
   in one process through the platform's WSGI application (`scale_tasks
   spread`).
3. PostgreSQL backend memory: one process serving `GET /api/v1/users`
   (it reads each tenant's tables) through the platform's WSGI application
   for the first 1, 100 and 1,000 tenants: first on one persistent
   connection (DB_MAX_SCHEMAS_PER_CONNECTION=0), reporting the backend's
   private heap after each step (Linux's RssAnon: where its relation and
   catalog caches live; its RSS also counts the shared buffers it touched,
   which are the server's, not the connection's); then with the platform's
   bound (a connection closed after the request in which it reached 200
   distinct schemas), reporting the peak private heap of any backend, read
   after every request. Target: <= 200 MiB.
4. Provisioning: `tenant_create` timed one after another (10; 5 with
   --quick) with no tenant, and again with N existing. Target: median <= 1 s
   and <= 1.25x the first.
5. Periodic fan-out: the daily cleanup (`cleanup_expired_sessions`) fanned
   out over every tenant from beat's message, on one worker (2 processes),
   until no run is left; the runs queued or running at once (sampled every
   0.1 s); a second beat tick one second in; and every tenant's run checked
   by what it deleted. Target: within 10 minutes, at most 1.5 pages
   (JOBS_FAN_OUT_BATCH) pending at once, the second tick queues nothing.
6. Worker memory with every tenant resolved: the measuring process of 3 (a
   worker's request path, in one process) reports its own memory and the
   sizes of the per-process caches (tenants by host, verified tokens), each
   bounded by a constant.
7. Side by side with the stock stack (`bench/settings_stock.py`: DRF +
   simplejwt's JWTAuthentication + django-tenants' TenantMainMiddleware +
   django-ratelimit on the view + a ModelSerializer ListAPIView with
   page-number pagination and its COUNT(*)), in its own gunicorn with the same
   settings, on the same database and a tenant of 10,000 users: `/users/me`,
   the users list (page of 20) and sign-in (4 connections), in 5 rounds (3
   with --quick) where each of ours runs right beside the stock stack's (every
   other round in the other order). The figure is the median of the rounds'
   ratios, printed with their range and with each server's worker CPU per
   request (the least noisy part): the speed of a shared VM drifts by 10-30%
   within minutes, and moves two runs made back to back alike. Targets: ours /
   stock >= 3 on /users/me and >= 1.5 on the list. The guarantees the stock
   stack lacks are printed beside the figures.

Results are printed and written to bench/results/scale.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import foundation, loadgen  # noqa: E402
from bench.foundation import Check, Environment, Server, say  # noqa: E402

TARGET_MIGRATION_SECONDS = 60.0  # for 1,000 tenants
TARGET_SPREAD_RATIO = 0.9
TARGET_BACKEND_MIB = 200.0
TARGET_PROVISION_SECONDS = 1.0
TARGET_PROVISION_GROWTH = 1.25
TARGET_FAN_OUT_SECONDS = 600.0
TARGET_STOCK_ME = 3.0
TARGET_STOCK_LIST = 1.5
LIST_TENANT = "bench-list"
LIST_PASSWORD = "Bench-list-password-1"  # noqa: S105
STOCK_LACKS = (
    "tokens bound to their tenant (the stock token opens any tenant's /users/me)",
    "revocation on the next request (sign-out, password change, deactivation)",
    "permissions from roles and grants per request (the stock list needs only a sign-in)",
    "rate limiting before any database work (django-ratelimit runs after the tenant lookup)",
)


@dataclass(frozen=True)
class Plan:
    tenants: int = 1000
    users: int = 5
    spreads: tuple[int, ...] = (1, 100, 1000)
    provision_count: int = 10
    list_users: int = 10_000
    rounds: int = 5  # the spread over tenants
    side_rounds: int = 5  # the stock stack side by side
    round_seconds: float = 5.0
    warmup_seconds: float = 2.0
    connections: int = 8
    processes: int = 1
    login_connections: int = 4
    fill_processes: int = 2
    baselines: bool = True  # the migration also by django-tenants' two executors

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            tenants=100, spreads=(1, 10, 100), provision_count=5, list_users=2_000,
            rounds=2, side_rounds=3, round_seconds=2.0, warmup_seconds=1.0, baselines=False,
        )  # fmt: skip


# ------------------------------------------------------------------ steps


def scale_task(
    environment: Environment, name: str, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    saved = environment.env
    environment.env = {**saved, **(env or {})}
    try:
        output = foundation.run_step(environment, name, "-m", "bench.scale_tasks", *args)
    finally:
        environment.env = saved
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def fill(environment: Environment, plan: Plan, tokens: Path) -> dict[str, Any]:
    """N tenants in `fill_processes` processes at once, each its share of the numbers."""
    started = time.perf_counter()
    share = -(-plan.tenants // plan.fill_processes)
    processes = []
    for index in range(plan.fill_processes):
        start = 1 + index * share
        count = min(share, plan.tenants - index * share)
        if count <= 0:
            continue
        part = tokens.with_suffix(f".{index}.jsonl")
        part.unlink(missing_ok=True)
        log = (environment.logs() / f"fill-{index}.log").open("ab")
        command = [
            sys.executable, "-m", "bench.scale_tasks", "fill", "--prefix", "s",
            "--start", str(start), "--count", str(count), "--users", str(plan.users),
            "--out", str(part),
        ]  # fmt: skip
        processes.append(
            (part, subprocess.Popen(command, cwd=ROOT, env=environment.env, stdout=log, stderr=log))
        )
    lines: list[str] = []
    for part, process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"filling tenants failed; see {environment.logs()}/fill-*.log")
        lines += part.read_text().splitlines()
    tokens.write_text("\n".join(sorted(lines)) + "\n")
    return {"tenants": len(lines), "seconds": time.perf_counter() - started}


def provisioning_median(environment: Environment, prefix: str, count: int) -> dict[str, Any]:
    result = foundation.django_task(
        environment, "provision", "--prefix", prefix, "--count", str(count)
    )
    return {
        "existing_before": result["existing_before"],
        "median": result["median"],
        "seconds": result["seconds"],
    }


def variants(tenants: list[dict[str, str]]) -> list[tuple[str, loadgen.Headers]]:
    return [(t["host"], (("Authorization", f"Bearer {t['token']}"),)) for t in tenants]


@dataclass(frozen=True)
class Load:
    label: str
    server: Server
    path: str
    pairs: list[tuple[str, loadgen.Headers]]
    method: str = "GET"
    body: bytes = b""
    connections: int | None = None


def load(item: Load, plan: Plan, seconds: float) -> dict[str, Any]:
    cpu_before = item.server.cpu_seconds()
    result = loadgen.run(
        "127.0.0.1",
        item.server.port,
        item.path,
        item.pairs[0][0],
        duration=seconds,
        connections=item.connections or plan.connections,
        processes=plan.processes,
        method=item.method,
        body=item.body,
        variants=item.pairs,
    )
    summary = result.summary()
    done = result.ok + result.non_200
    cpu = item.server.cpu_seconds() - cpu_before
    summary["worker_cpu_us_per_request"] = round(cpu / done * 1e6, 1) if done else 0.0
    return summary


def rounds(items: list[Load], plan: Plan, count: int | None = None) -> dict[str, dict[str, Any]]:
    """Interleaved rounds after a warm-up; each label's rps per round and median. Every
    other round runs the items in reverse order, so that no label always follows the same
    one (a shared VM's speed drifts within a round as well as between rounds)."""
    count = count or plan.rounds
    for item in items:
        # Long enough for each tenant's token to reach both workers a few times (first
        # sight: verified and its session state cached per worker), at a few hundred rps.
        load(item, plan, max(plan.warmup_seconds, 4 * len(item.pairs) / 300))
    per: dict[str, list[dict[str, Any]]] = {item.label: [] for item in items}
    for index in range(1, count + 1):
        for item in items if index % 2 else items[::-1]:
            per[item.label].append(load(item, plan, plan.round_seconds))
        line = []
        for item in items:
            result = per[item.label][-1]
            bad = result["non_200"] + result["errors"]
            line.append(f"{item.label} {result['rps']:.0f}" + (f" ({bad} failed)" if bad else ""))
        say(f"round {index}/{count} (rps): " + ", ".join(line))
    return {
        label: {
            "rps": statistics.median(r["rps"] for r in results),
            "failed": sum(r["non_200"] + r["errors"] for r in results),
            "worker_cpu_us_per_request": statistics.median(
                r["worker_cpu_us_per_request"] for r in results
            ),
            "rounds": results,
        }
        for label, results in per.items()
    }


def migrations(
    environment: Environment, server: Server, tenants: list[dict[str, str]], *, baselines: bool
) -> dict[str, Any]:
    """Each executor applies one more additive migration while /users/me is loaded: the
    platform's default first, then (unless quick) django-tenants' two executors."""
    runs: list[tuple[str, str, list[str], dict[str, str]]] = [("default", "v2", [], {})]
    if baselines:
        runs += [
            ("standard", "v3", ["--executor", "standard"], {"TENANT_MIGRATION_REPLAY": "false"}),
            (
                "multiprocessing",
                "v4",
                ["--executor", "multiprocessing"],
                {"TENANT_MIGRATION_REPLAY": "false", "TENANT_MULTIPROCESSING_MAX_PROCESSES": "2"},
            ),
        ]
    pairs = variants(tenants)
    results: dict[str, Any] = {}
    for label, version, options, extra in runs:
        say(
            f"migrate_schemas ({label}): scale_app migration {version} across {len(tenants)} tenants"
        )
        env = {**environment.env, "SCALE_MIGRATIONS": version, **extra}
        log = (environment.logs() / f"migrate-{label}.log").open("ab")
        answered = failed = 0
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate_schemas", "--noinput", "-v", "1", *options],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while process.poll() is None:
            result = loadgen.run(
                "127.0.0.1", server.port, "/api/v1/users/me", pairs[0][0],
                duration=1.0, connections=2, variants=pairs,
            )  # fmt: skip
            answered += result.ok
            failed += result.non_200 + result.errors
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"migrate_schemas ({label}) failed; see {log.name}")
        say(f"  {seconds:.1f}s; meanwhile {answered} requests answered, {failed} failed")
        results[label] = {"seconds": seconds, "answered": answered, "failed": failed}
    return results


def stock_token(server: Server, host: str, email: str, password: str) -> str:
    body = json.dumps({"email": email, "password": password}).encode()
    status, response = foundation.http_exchange(
        server.port, "/api/v1/auth/login", host, 30.0, method="POST",
        headers=(("Content-Type", "application/json"),), body=body,
    )  # fmt: skip
    if status != 200:
        raise RuntimeError(f"stock sign-in answered {status}: {response[:300]!r}")
    return str(json.loads(response)["access"])


# ------------------------------------------------------------------ the run


def run(plan: Plan) -> dict[str, Any]:
    started = time.monotonic()
    report: dict[str, Any] = {
        "plan": asdict(plan),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    with contextlib.ExitStack() as stack:
        environment = foundation.start_services(stack)
        environment.local_dir = environment.local_dir / "scale"
        environment.local_dir.mkdir(parents=True, exist_ok=True)
        for old_log in environment.logs().glob("*.log"):
            old_log.unlink()
        environment.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "bench.settings_scale",
                "SCALE_MIGRATIONS": "v1",
                "JWT_ACCESS_MINUTES": "120",
                "AUTH_RATE_LOGIN_IP": "100000000/m",
                "AUTH_RATE_LOGIN_ACCOUNT": "100000000/m",
            }
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

        say(f"provisioning: tenant_create x{plan.provision_count} with no tenant")
        empty = provisioning_median(environment, "p0", plan.provision_count)
        say(f"  median {empty['median']:.3f}s")
        say(
            f"{plan.tenants} tenants by tenant_create ({plan.fill_processes} processes), {plan.users} users each"
        )
        tokens_file = environment.local_dir / "tokens.jsonl"
        report["fill"] = fill(environment, plan, tokens_file)
        say(
            f"  {report['fill']['seconds']:.0f}s; VACUUM ANALYZE {foundation.vacuum_analyze(environment):.1f}s"
        )
        tenants = [json.loads(line) for line in tokens_file.read_text().splitlines() if line]
        say(
            f"provisioning: tenant_create x{plan.provision_count} with {len(tenants) + plan.provision_count} tenants"
        )
        full = provisioning_median(environment, "p1", plan.provision_count)
        say(f"  median {full['median']:.3f}s")
        report["provisioning"] = {"empty": empty, "full": full}

        say(
            f"a tenant of {plan.list_users} users for the side-by-side (bench.identity_tasks setup)"
        )
        output = foundation.run_step(
            environment, "list-setup", "-m", "bench.identity_tasks", "setup",
            "--slug", LIST_TENANT, "--users", str(plan.list_users),
            "--password", LIST_PASSWORD, "--verifies", "1",
        )  # fmt: skip
        listed = json.loads(output.strip().splitlines()[-1])
        say(f"  VACUUM ANALYZE {foundation.vacuum_analyze(environment):.1f}s")

        say("in process: CPU and SQL per /users/me, tenants taken in turn")
        report["spread_in_process"] = scale_task(
            environment, "task-spread", "spread", "--tokens", str(tokens_file),
            "--steps", ",".join(map(str, plan.spreads)),
        )["steps"]  # fmt: skip
        say("gunicorn as the image runs it (platform)")
        server = foundation.start_server(
            stack, environment, "scale", "bench.wsgi:application", foundation.PLATFORM_CONFIG
        )
        memory_before = server.memory()
        spread_loads = [
            Load(
                f"{count} tenant{'s' if count > 1 else ''}",
                server,
                "/api/v1/users/me",
                variants(tenants[:count]),
            )
            for count in plan.spreads
        ]
        say("requests spread over " + ", ".join(str(c) for c in plan.spreads) + " tenants")
        report["spread"] = rounds(spread_loads, plan)
        report["gunicorn_worker_memory"] = {"before": memory_before, "after": server.memory()}

        say("the stock stack in its own gunicorn (bench.settings_stock)")
        host = listed["host"]
        stock = Server(
            environment, "stock", "bench.wsgi_stock:application", foundation.PLATFORM_CONFIG,
            extra_env={"DJANGO_SETTINGS_MODULE": "bench.settings_stock"},
        )  # fmt: skip
        stack.callback(stock.stop)
        stock.wait_ready("/api/v1/ping", host)
        ours_token = (("Authorization", f"Bearer {listed['access_token']}"),)
        stock_bearer = stock_token(stock, host, listed["login_email"], LIST_PASSWORD)
        theirs = (("Authorization", f"Bearer {stock_bearer}"),)
        login_body = json.dumps(
            {"email": listed["login_email"], "password": LIST_PASSWORD}
        ).encode()
        json_type = (("Content-Type", "application/json"),)
        side = [
            Load("ours /users/me", server, "/api/v1/users/me", [(host, ours_token)]),
            Load("stock /users/me", stock, "/api/v1/users/me", [(host, theirs)]),
            Load("ours list", server, "/api/v1/users?page_size=20", [(host, ours_token)]),
            Load("stock list", stock, "/api/v1/users?page_size=20", [(host, theirs)]),
            Load("ours sign-in", server, "/api/v1/auth/login", [(host, json_type)], "POST", login_body, plan.login_connections),
            Load("stock sign-in", stock, "/api/v1/auth/login", [(host, json_type)], "POST", login_body, plan.login_connections),
        ]  # fmt: skip
        say("side by side: /users/me, users list (page of 20), sign-in")
        report["side_by_side"] = rounds(side, plan, plan.side_rounds)
        stock.stop()

        report["migrations"] = migrations(environment, server, tenants, baselines=plan.baselines)
        server.stop()

        say(
            "PostgreSQL backend memory, one connection, schemas touched: "
            + ", ".join(map(str, plan.spreads))
        )
        steps = ",".join(map(str, plan.spreads))
        report["memory_unbounded"] = scale_task(
            environment, "task-memory", "memory", "--tokens", str(tokens_file), "--steps", steps,
            env={"DB_MAX_SCHEMAS_PER_CONNECTION": "0"},
        )  # fmt: skip
        report["memory"] = scale_task(
            environment, "task-memory", "memory", "--tokens", str(tokens_file), "--steps", steps
        )
        say("the daily cleanup fanned out over every tenant, one worker")
        report["fan_out"] = scale_task(
            environment, "task-fan-out", "fan-out", "--logs", str(environment.logs()),
            "--timeout", str(TARGET_FAN_OUT_SECONDS * 1.5),
        )  # fmt: skip
    report["duration_seconds"] = round(time.monotonic() - started, 1)
    report["summary"] = [asdict(check) for check in summarize(report)]
    return report


# ------------------------------------------------------------------ the summary


def paired_ratios(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[float]:
    """The rps ratio of each round (ours / stock, 1,000 tenants / 1): the two ran in the
    same round, one close after the other, so the drift of a shared machine's speed, which
    moves both alike, cancels; the figure is the median of these ratios."""
    return [a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=True) if b["rps"]]


def summarize(report: dict[str, Any]) -> list[Check]:
    plan = report["plan"]
    tenants = report["fill"]["tenants"]
    checks: list[Check] = []
    migration_target = TARGET_MIGRATION_SECONDS * tenants / 1000
    for label, result in report["migrations"].items():
        default = label == "default"
        checks.append(
            Check(
                f"migration across {tenants} tenants, {label} executor",
                f"{result['seconds']:.1f} s; {result['answered']} requests answered meanwhile, "
                f"{result['failed']} failed",
                f"<= {migration_target:.0f} s, none failed" if default else "",
                (result["seconds"] <= migration_target and result["failed"] == 0)
                if default
                else None,
            )
        )
    spread = report["spread"]
    labels = list(spread)
    for label in labels:
        checks.append(Check(f"/users/me over {label}", f"{spread[label]['rps']:.0f} rps"))
    in_process = report["spread_in_process"]
    for label, step in in_process.items():
        checks.append(
            Check(
                f"/users/me in process over {label} tenants",
                f"{step['cpu_us_per_request']:.0f} us CPU, {step['sql_per_request']:.2f} SQL "
                "per request",
            )
        )
    ratios = paired_ratios(spread[labels[-1]]["rounds"], spread[labels[0]]["rounds"])
    ratio = statistics.median(ratios) if ratios else 0.0
    checks.append(
        Check(
            f"/users/me rps, {labels[-1]} / {labels[0]}",
            f"{ratio:.2f}, rounds {min(ratios, default=0):.2f} to {max(ratios, default=0):.2f}",
            f">= {TARGET_SPREAD_RATIO}",
            ratio >= TARGET_SPREAD_RATIO,
        )
    )
    for step in report["memory_unbounded"]["steps"][1:]:
        checks.append(
            Check(
                f"PostgreSQL backend, one connection, after {step['schemas']} schemas",
                f"private heap {step['backend']['anon']:.0f} MiB (RSS {step['backend']['rss']:.0f} "
                "MiB, of it shared buffers touched)",
            )
        )
    memory = report["memory"]
    steps = memory["steps"]
    last_step = steps[-1]
    checks.append(
        Check(
            f"PostgreSQL backend with the bound ({memory['max_schemas_per_connection']} schemas per "
            f"connection), {last_step['schemas']} schemas",
            f"peak private heap {last_step['backend_peak']['anon']:.0f} MiB, "
            f"{last_step['connections']} connections opened",
            f"<= {TARGET_BACKEND_MIB:.0f} MiB",
            last_step["backend_peak"]["anon"] <= TARGET_BACKEND_MIB,
        )
    )
    empty = report["provisioning"]["empty"]["median"]
    full = report["provisioning"]["full"]["median"]
    checks.append(
        Check(
            "provisioning median, no tenant",
            f"{empty:.3f} s",
            f"<= {TARGET_PROVISION_SECONDS} s",
            empty <= TARGET_PROVISION_SECONDS,
        )
    )
    checks.append(
        Check(
            f"provisioning median, {tenants} tenants",
            f"{full:.3f} s ({full / empty:.2f}x)",
            f"<= {TARGET_PROVISION_SECONDS} s and <= {TARGET_PROVISION_GROWTH}x",
            full <= TARGET_PROVISION_SECONDS and full / empty <= TARGET_PROVISION_GROWTH,
        )
    )
    fan = report["fan_out"]
    bound = fan["batch"] * 3 // 2
    checks.append(
        Check(
            f"cleanup fanned out over {fan['tenants']} tenants, one worker",
            f"{fan['seconds']:.0f} s, at most {fan['most_pending']} runs pending, second tick "
            f"queued {fan['second_tick_queued']}, tenants not cleaned {fan['tenants_not_cleaned']}",
            f"<= {TARGET_FAN_OUT_SECONDS:.0f} s, <= {bound} pending, 0, 0",
            fan["seconds"] <= TARGET_FAN_OUT_SECONDS
            and fan["most_pending"] <= bound
            and fan["second_tick_queued"] == 0
            and fan["tenants_not_cleaned"] == 0,
        )
    )
    grown = last_step["process_uss"] - steps[0]["process_uss"]
    checks.append(
        Check(
            f"worker caches with {last_step['schemas']} tenants resolved",
            f"tenants {last_step['tenant_cache_entries']} (max {memory['tenant_cache_max']}), "
            f"verified tokens {last_step['verified_token_entries']} (max {memory['verified_tokens_max']}); "
            f"process USS +{grown:.1f} MiB",
            "bounded by the constants",
            last_step["tenant_cache_entries"] <= memory["tenant_cache_max"]
            and last_step["verified_token_entries"] <= memory["verified_tokens_max"],
        )
    )
    side = report["side_by_side"]
    for what, target in (
        ("/users/me", TARGET_STOCK_ME),
        ("list", TARGET_STOCK_LIST),
        ("sign-in", None),
    ):
        ours, theirs = side[f"ours {what}"], side[f"stock {what}"]
        ratios = paired_ratios(ours["rounds"], theirs["rounds"])
        value = statistics.median(ratios) if ratios else 0.0
        checks.append(
            Check(
                f"ours / stock, {what}",
                f"{value:.2f}, rounds {min(ratios, default=0):.2f} to {max(ratios, default=0):.2f} "
                f"({ours['rps']:.0f} / {theirs['rps']:.0f} rps; worker CPU per request "
                f"{ours['worker_cpu_us_per_request']:.0f} / "
                f"{theirs['worker_cpu_us_per_request']:.0f} us)",
                f">= {target}" if target else "",
                value >= target if target else None,
            )
        )
    del plan
    return checks


def print_report(report: dict[str, Any]) -> None:
    print("=" * 100)
    print(
        f"Scale: {report['fill']['tenants']} tenants; medians of {report['plan']['rounds']} "
        f"interleaved rounds of {report['plan']['round_seconds']:g}s; "
        f"{report['machine']['cpus']} CPUs; gunicorn {foundation.WORKERS} sync workers; PostgreSQL "
        f"{report['services']['postgresql']}, Redis {report['services']['redis']}"
    )
    print("=" * 100)
    for check in report["summary"]:
        print(Check(**check).line())
    print("What the stock stack lacks beside these figures:")
    for item in STOCK_LACKS:
        print(f"  - {item}")
    print(f"benchmark run time: {report['duration_seconds']:.0f} s")


def main() -> int:
    parser = foundation.load_arguments(__doc__, "100 tenants, shorter rounds (about 3 minutes)")
    parser.add_argument("--tenants", type=int, help="how many tenants (default 1000)")
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the migration by django-tenants' own executors (as --quick does)",
    )
    args = parser.parse_args()
    plan = foundation.plan_from_arguments(Plan.quick() if args.quick else Plan(), args)
    if args.no_baselines:
        plan = replace(plan, baselines=False)
    if args.tenants:
        spreads = tuple(sorted({1, max(1, args.tenants // 10), args.tenants}))
        plan = replace(plan, tenants=args.tenants, spreads=spreads)
    return foundation.run_and_save("scale", lambda: run(plan), print_report)


if __name__ == "__main__":
    foundation.ensure_venv()
    sys.exit(main())
