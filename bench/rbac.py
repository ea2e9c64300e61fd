"""RBAC benchmark: what the permission check costs an authenticated request.

    python3 run.py bench rbac             # about 1 minute on 2 cores
    python3 run.py bench rbac --quick

Three variants of `GET /api/v1/users/me` with the same bearer token, called
in-process through the whole WSGI stack (middleware, tenant resolution, the
gateway's Redis round trip, DRF, the envelope), in interleaved rounds in one
process (`bench/rbac_tasks.py`):

- identity: the gateway as the identity work left it (it reads the token's
  user and session state only); this is the identity benchmark's request;
- rbac: today's gateway, which also reads the user's grants in the same Lua
  call (the view needs no permission: any signed-in user);
- checked: the same view declaring `users.view`, so HasPermission decodes the
  grants and checks them on every request.

Target: checked / identity <= 1.10 (the permission check costs at most 10%).
Medians of the rounds' mean time per request; the in-process figure leaves
out the HTTP server, which is the same for all three.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import foundation  # noqa: E402

TARGET = 1.10


def run(rounds: int, requests: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        environment = foundation.start_services(stack)
        environment.local_dir = environment.local_dir / "rbac"
        environment.local_dir.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "postgresql": foundation.recreate_database(environment),
            "redis": foundation.reset_redis(environment),
        }
        foundation.say("migrate_schemas")
        foundation.run_step(
            environment, "migrate", "manage.py", "migrate_schemas", "--noinput", "-v", "0"
        )
        foundation.say(f"{rounds} interleaved rounds of {requests} requests per variant")
        output = foundation.run_step(
            environment,
            "rbac-measure",
            "-m",
            "bench.rbac_tasks",
            *("--rounds", str(rounds), "--requests", str(requests)),
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
    report = run(rounds=3 if args.quick else 7, requests=300 if args.quick else 1000)
    us = report["median_us"]
    ratio = us["checked"] / us["identity"]
    report["ratio_checked_vs_identity"] = round(ratio, 3)
    report["ratio_rbac_vs_identity"] = round(us["rbac"] / us["identity"], 3)
    print("=" * 78)
    print("GET /api/v1/users/me in process, median of rounds, us per request:")
    for name in ("identity", "rbac", "checked"):
        print(
            f"  {name:<9} {us[name]:8.0f}   rounds: {', '.join(f'{v:.0f}' for v in report['rounds_us'][name])}"
        )
    print(
        f"rbac gateway (grants read in the same round trip) / identity: {report['ratio_rbac_vs_identity']:.3f}"
    )
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"permission-checked / identity: {ratio:.3f} (target <= {TARGET}) {verdict}")
    print(
        f"Redis commands per request: {report['redis_commands']}; SQL per request: {report['sql_queries']}"
    )
    foundation.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (foundation.RESULTS_DIR / "rbac.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    foundation.ensure_venv()
    sys.exit(main())
