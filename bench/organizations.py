"""Organizations benchmark: reading a 10,000-node subtree against a plain SELECT of as many rows.

    python3 run.py bench organizations            # about a minute on 2 cores
    python3 run.py bench organizations --quick

The harness is the foundation benchmark's (`bench/foundation.py`): embedded
PostgreSQL and Redis (or DATABASE_URL / REDIS_URL), its own database
`platform_bench` dropped and created again, `migrate_schemas`, production
settings (`bench.settings`). The measurement then runs in one Django process
(this file again, with `--measure`):

Setup: a tenant made by `tenant_create`; a tree of 10,000 organizations, 13
levels (depth 0 to 12: a spine of 13 nodes, the rest each under a random node
above depth 12, seeded), bulk-inserted with computed paths and depths, then
ANALYZE.

Timed, in interleaved runs (median of the runs, same process, warm):

- descendants: `list(selectors.organization_descendants(organization=root))`,
  what GET /organizations/{root}/descendants runs: 9,999 rows fetched as model
  instances (every column), `path LIKE '/1/%'` in tree order (ORDER BY path
  COLLATE "C");
- baseline: `list(Organization.objects.filter(id__range=(2, 10000)).order_by("id"))`:
  the same 9,999 rows and columns, as model instances, by the primary key.

Target: descendants / baseline <= 2.0. For information: the same two with
`values_list` (no model instances), the API endpoint
`GET /api/v1/organizations/{root}/descendants?page_size=100` and the ancestors
of a depth-12 node through the whole WSGI stack (Django test client, bearer
token, owner role), their SQL query counts, and a move of the root's largest
child subtree (one UPDATE) under another child and back.

The summary is printed and written to `bench/results/organizations.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import foundation  # noqa: E402

TARGET = 2.0
NODES = 10_000
MAX_DEPTH = 12


# ------------------------------------------------------------------ the orchestrating process


def run(runs: int, requests: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        environment = foundation.start_services(stack)
        environment.local_dir = environment.local_dir / "organizations"
        environment.local_dir.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "postgresql": foundation.recreate_database(environment),
            "redis": foundation.reset_redis(environment),
        }
        foundation.say("migrate_schemas")
        foundation.run_step(
            environment, "migrate", "manage.py", "migrate_schemas", "--noinput", "-v", "0"
        )
        foundation.say(f"a {NODES}-node tree, then {runs} interleaved runs")
        output = foundation.run_step(
            environment,
            "organizations-measure",
            str(Path(__file__).resolve()),
            "--measure",
            *("--runs", str(runs), "--requests", str(requests)),
        )
        report.update(json.loads(output.strip().splitlines()[-1]))
        return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_average = os.getloadavg()
    report = run(runs=5 if args.quick else 15, requests=50 if args.quick else 200)
    report["load_average"] = [round(v, 2) for v in load_average]
    ms = report["median_ms"]
    ratio = ms["descendants"] / ms["baseline"]
    report["ratio_descendants_vs_baseline"] = round(ratio, 3)
    report["ratio_values_descendants_vs_baseline"] = round(
        ms["descendants_values"] / ms["baseline_values"], 3
    )
    tree = report["tree"]
    print("=" * 78)
    print(
        f"Tree: {tree['nodes']} nodes, depth 0..{tree['max_depth']}, "
        f"{tree['descendants_of_root']} descendants of the root."
    )
    print("Median of the runs, ms (model instances unless said):")
    for name in ("descendants", "baseline", "descendants_values", "baseline_values"):
        runs = ", ".join(f"{v:.1f}" for v in report["runs_ms"][name])
        print(f"  {name:<19} {ms[name]:8.2f}   runs: {runs}")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"descendants / plain SELECT of the same rows: {ratio:.3f} (target <= {TARGET}) {verdict}"
    )
    print(
        f"  as values_list (no model instances): {report['ratio_values_descendants_vs_baseline']:.3f}"
    )
    fastest = report["min_ms"]
    report["ratio_min_descendants_vs_baseline"] = round(
        fastest["descendants"] / fastest["baseline"], 3
    )
    print(
        f"  fastest run against fastest run (less noise from a busy machine): "
        f"{report['ratio_min_descendants_vs_baseline']:.3f}; load average before: "
        f"{', '.join(f'{v:.1f}' for v in report['load_average'])} on {os.cpu_count()} CPUs"
    )
    api = report["api"]
    for figures in api.values():
        print(
            f"{figures['url']}: {figures['median_us']:.0f} us per request "
            f"({figures['sql_queries']} SQL queries, {figures['items']} items)"
        )
    move = report["move"]
    print(
        f"move of a {move['subtree']}-node subtree (one UPDATE, audited): "
        f"{move['median_ms']:.1f} ms median"
    )
    foundation.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    output = foundation.RESULTS_DIR / "organizations.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    foundation.say(f"results written to {output.relative_to(ROOT)}")
    return 0


# ------------------------------------------------------------------ the measuring process


def _tree_rows(count: int, max_depth: int, seed: int = 7) -> list[tuple[int, int | None, str, int]]:
    """(id, parent_id, path, depth) for ids 1..count, level by level: each level about
    twice the one above (so depth 0..max_depth holds `count`), every node under a random
    node of the level above."""
    rng = random.Random(seed)  # a fixed shape, run after run
    ratio = 1.0
    while sum(ratio**d for d in range(max_depth + 1)) < count:
        ratio += 0.001
    sizes = [max(1, round(ratio**d)) for d in range(max_depth + 1)]
    sizes[0] = 1
    sizes[-1] += count - sum(sizes)
    rows: list[tuple[int, int | None, str, int]] = [(1, None, "/1/", 0)]
    above = rows[:]
    for depth in range(1, max_depth + 1):
        level: list[tuple[int, int | None, str, int]] = []
        for _ in range(sizes[depth]):
            pk = len(rows) + 1
            parent = rng.choice(above)
            row = (pk, parent[0], f"{parent[2]}{pk}/", depth)
            rows.append(row)
            level.append(row)
        above = level
    return rows


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure(runs: int, requests: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from django.db import connection, transaction
    from django.test import Client
    from django_tenants.utils import tenant_context

    from apps.accounts.services.sessions import ClientInfo, session_start
    from apps.organizations import selectors, services
    from apps.organizations.models import Organization
    from apps.tenants.services import tenant_create

    provisioned = tenant_create(
        name="Bench Organizations", slug="bench-orgs", admin_email="owner@bench.test"
    )
    host = provisioned.domain.domain
    result: dict[str, Any] = {}
    with tenant_context(provisioned.tenant):
        rows = _tree_rows(NODES, MAX_DEPTH)
        with transaction.atomic():
            Organization.objects.bulk_create(
                [
                    Organization(
                        id=pk, name=f"Unit {pk}", type="team", parent_id=parent, path=path, depth=d
                    )
                    for pk, parent, path, d in rows
                ],
                batch_size=2000,
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('organizations_organization', 'id'), %s)",
                [NODES],
            )
            cursor.execute("VACUUM ANALYZE organizations_organization")
        root = Organization.objects.get(pk=1)
        deepest = Organization.objects.filter(depth=MAX_DEPTH).order_by("id").first()
        if deepest is None:
            raise RuntimeError("the tree has no node at the maximum depth")

        variants: dict[str, Callable[[], Any]] = {
            "descendants": lambda: list(selectors.organization_descendants(organization=root)),
            "baseline": lambda: list(
                Organization.objects.filter(id__range=(2, NODES)).order_by("id")
            ),
            "descendants_values": lambda: list(
                selectors.organization_descendants(organization=root).values_list()
            ),
            "baseline_values": lambda: list(
                Organization.objects.filter(id__range=(2, NODES)).order_by("id").values_list()
            ),
        }
        counts = {name: len(fn()) for name, fn in variants.items()}
        if len(set(counts.values())) != 1:
            raise RuntimeError(f"the variants fetch different row counts: {counts}")
        for fn in variants.values():  # warm: plans cached, pages in shared buffers
            for _ in range(3):
                fn()
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(runs):
            for name, fn in variants.items():
                timings[name].append(_timed(fn))
        result["runs_ms"] = {k: [round(v, 2) for v in vs] for k, vs in timings.items()}
        result["median_ms"] = {k: round(statistics.median(vs), 2) for k, vs in timings.items()}
        result["min_ms"] = {k: round(min(vs), 2) for k, vs in timings.items()}
        result["tree"] = {
            "nodes": Organization.objects.count(),
            "max_depth": max(row[3] for row in rows),
            "descendants_of_root": counts["descendants"],
        }
        with connection.cursor() as cursor:
            sql, params = selectors.organization_descendants(
                organization=root
            ).query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            result["descendants_plan"] = [line for (line,) in cursor.fetchall()]

        pair = session_start(
            user=provisioned.admin, client=ClientInfo(ip_address="127.0.0.1", user_agent="bench")
        )
        result["api"] = _api(
            Client(),
            host,
            pair.access_token,
            {
                "descendants": f"/api/v1/organizations/{root.pk}/descendants?page_size=100",
                "ancestors": f"/api/v1/organizations/{deepest.pk}/ancestors",
            },
            requests,
            connection,
        )
        result["move"] = _move(runs, services, Organization)
    return result


def _api(
    client: Any,
    host: str,
    token: str,
    urls: dict[str, str],
    requests: int,
    connection: Any,
) -> dict[str, Any]:
    headers = {"HTTP_HOST": host, "HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(url: str) -> Any:
        response = client.get(url, **headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
        return response

    out: dict[str, Any] = {}
    for name, url in urls.items():
        for _ in range(20):
            get(url)
        # Counted at the cursor: the request's own reset_queries() empties
        # connection.queries under a CaptureQueriesContext.
        statements: list[str] = []

        def count(execute: Any, sql: str, *args: Any, _s: list[str] = statements) -> Any:
            _s.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(count):
            data = get(url).json()["data"]
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(requests):
                get(url)
            rounds.append((time.perf_counter() - started) / requests * 1e6)
        out[name] = {
            "url": url,
            "median_us": round(statistics.median(rounds), 1),
            "rounds_us": [round(r, 1) for r in rounds],
            "sql_queries": len(statements),
            "items": len(data["items"] if isinstance(data, dict) else data),
        }
    return out


def _move(runs: int, services: Any, organization_model: Any) -> dict[str, Any]:
    children = list(organization_model.objects.filter(depth=1).order_by("id"))
    sizes = {
        child.pk: organization_model.objects.filter(path__startswith=child.path).count()
        for child in children
    }
    largest = max(children, key=lambda c: sizes[c.pk])
    other = next(c for c in children if c.pk != largest.pk)
    timings = []
    for _ in range(max(3, runs // 3)):
        for parent_id in (other.pk, largest.parent_id):
            started = time.perf_counter()
            services.organization_move(actor=None, organization=largest, parent_id=parent_id)
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "subtree": sizes[largest.pk],
        "median_ms": round(statistics.median(timings), 2),
        "runs_ms": [round(t, 2) for t in timings],
    }


if __name__ == "__main__":
    if "--measure" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--measure", action="store_true")
        parser.add_argument("--runs", type=int, default=15)
        parser.add_argument("--requests", type=int, default=200)
        options = parser.parse_args()
        print(json.dumps(measure(options.runs, options.requests)))
        sys.exit(0)
    foundation.ensure_venv()
    sys.exit(main())
