"""Jobs benchmark: how long an event takes to reach an inbox, and how fast bulk mail goes out.

    python3 run.py bench jobs             # about 2 minutes on 2 cores
    python3 run.py bench jobs --quick

Embedded PostgreSQL and Redis (or DATABASE_URL / REDIS_URL), production
settings (`bench.settings`), a real Celery worker (2 processes, Redis broker),
the measuring process (`bench/jobs_tasks.py`) and a real SMTP server
(aiosmtpd, `bench/smtp_sink.py`) in a process of its own, which reports the
moment it accepts each message. (Until this session the server ran as a thread
of the measuring process: the raw `send_mail` loop then took turns with it on
one interpreter lock, which made that baseline 20 to 50% slower in our runs.)

1. Event-to-inbox latency: a user is created (the service, committed), its
   `user.created` event goes out on commit, the welcome consumer runs in the
   worker, `notification_send()` writes the notification, sends the e-mail and writes the
   deliveries, and the SMTP server accepts the message; timed from the commit
   to the acceptance, one user at a time, 200 users. The legs are printed from
   the rows' own timestamps. Printed
   beside the bare Celery round trip of an empty task (send, run, result back)
   measured in the same run. Target: median <= 3x the empty-task median.
2. Bulk throughput: deliveries per second of a notification batch sent by e-mail
   to N users (batch -> fan-out -> chunks, each mailed by its worker over one
   connection),
   from the enqueue to the last message accepted, against raw `send_mail` calls
   in a loop to the same server. Interleaved rounds, medians. Target: batch / raw >= 0.5.

Results are printed and written to bench/results/jobs.json.
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
from platform_site.env import redis_db_url  # noqa: E402

TARGET_LATENCY_RATIO = 3.0
TARGET_BULK_RATIO = 0.5


def run(users: int, bulk: int, rounds: int, inline_channels: str | None = None) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        environment = foundation.start_services(stack)
        environment.local_dir = environment.local_dir / "jobs"
        environment.local_dir.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "postgresql": foundation.recreate_database(environment),
            "redis": foundation.reset_redis(environment),
        }
        # The empty task's result comes back through Redis (production stores none).
        environment.env["CELERY_RESULT_BACKEND"] = redis_db_url(environment.redis_url, 2)
        if inline_channels is not None:
            # NOTIFICATION_INLINE_CHANNELS for the worker ("": every e-mail through `deliver`).
            environment.env["NOTIFICATION_INLINE_CHANNELS"] = inline_channels
            report["inline_channels"] = inline_channels
        foundation.say("migrate_schemas")
        foundation.run_step(
            environment, "migrate", "manage.py", "migrate_schemas", "--noinput", "-v", "0"
        )
        foundation.say(f"{users} users one at a time, then {rounds} bulk rounds of {bulk} messages")
        output = foundation.run_step(
            environment,
            "jobs-measure",
            "-m",
            "bench.jobs_tasks",
            *("--users", str(users), "--bulk", str(bulk), "--rounds", str(rounds)),
            *("--logs", str(environment.logs())),
        )
        report.update(json.loads(output.strip().splitlines()[-1]))
        return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--inline-channels",
        default=None,
        help="NOTIFICATION_INLINE_CHANNELS for the worker ('' : no inline fast path)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    report = run(users=50 if args.quick else 200, bulk=100 if args.quick else 300,
                 rounds=2 if args.quick else 3, inline_channels=args.inline_channels)  # fmt: skip
    latency, empty = report["latency_ms"], report["empty_task_ms"]
    ratio = latency["median"] / empty["median"]
    bulk = report["bulk_per_second"]
    bulk_ratio = bulk["batch"] / bulk["raw_send_mail"]
    report["ratio_latency_vs_empty_task"] = round(ratio, 2)
    report["ratio_batch_vs_raw"] = round(bulk_ratio, 2)
    print("=" * 78)
    print(
        f"Event-to-inbox latency over {report['users']} users (user created -> welcome accepted):"
    )
    print(f"  median {latency['median']:.1f} ms   p95 {latency['p95']:.1f} ms")
    print("  legs (medians, from the rows' timestamps):")
    for leg, ms in report["latency_stages_ms"].items():
        print(f"    {leg:24} {ms:6.2f} ms")
    print(f"Empty Celery task round trip ({report['empty_tasks']} tasks):")
    print(f"  median {empty['median']:.1f} ms   p95 {empty['p95']:.1f} ms")
    verdict = "PASS" if ratio <= TARGET_LATENCY_RATIO else "FAIL"
    print(
        f"latency / empty task (medians): {ratio:.2f} (target <= {TARGET_LATENCY_RATIO}) {verdict}"
    )
    print(
        f"Bulk e-mail, {report['bulk']} messages, median of {report['rounds']} rounds, per second:"
    )
    print(f"  raw send_mail loop  {bulk['raw_send_mail']:8.0f}")
    print(f"  notification batch  {bulk['batch']:8.0f}   (deliveries, a connection per chunk)")
    verdict = "PASS" if bulk_ratio >= TARGET_BULK_RATIO else "FAIL"
    print(f"batch / raw: {bulk_ratio:.2f} (target >= {TARGET_BULK_RATIO}) {verdict}")
    foundation.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (foundation.RESULTS_DIR / "jobs.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    foundation.ensure_venv()
    sys.exit(main())
