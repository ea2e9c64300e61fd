"""The jobs benchmark's measurement, in one Django process with a worker beside it (see bench/jobs.py)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


class Inbox:
    """When each recipient's message was accepted, as the SMTP server process reports it."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def record(self, moment: float, recipients: list[str]) -> None:
        with self.changed:
            for address in recipients:
                self.accepted.setdefault(address, moment)
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, address: str, timeout: float = 30) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: address in self.accepted, timeout=timeout):
                raise RuntimeError(f"no message for {address} within {timeout}s")
            return self.accepted[address]

    def wait_count(self, count: int, timeout: float = 300) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: self.count >= count, timeout=timeout):
                raise RuntimeError(f"{self.count} of {count} messages within {timeout}s")
            return time.perf_counter()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """bench/smtp_sink.py in a process of its own; a thread reads what it accepted."""

    def __init__(self, inbox: Inbox) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.smtp_sink", str(self.port)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self.process.stdout is None or self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark's SMTP server did not start")
        self.reader = threading.Thread(target=self._read, args=(inbox,), daemon=True)
        self.reader.start()

    def _read(self, inbox: Inbox) -> None:
        for line in self.process.stdout or ():
            moment, *recipients = line.split()
            inbox.record(float(moment), recipients)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


ROOT = Path(__file__).resolve().parents[1]

# The SMTP server first: the settings read EMAIL_HOST / EMAIL_PORT when Django starts.
INBOX = Inbox()
CONTROLLER = SmtpServer(INBOX)
os.environ.update({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(CONTROLLER.port)})

import django  # noqa: E402

django.setup()

from django.core.mail import send_mail  # noqa: E402
from django.db import transaction  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.accounts.services.users import user_create  # noqa: E402
from apps.notifications import consumers  # noqa: E402, F401  (the receivers, as the web has them)
from apps.notifications.send import batch_create  # noqa: E402
from apps.rbac.grants import user_grants  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from bench.jobs_worker_tasks import empty  # noqa: E402
from platform_site.celery import app  # noqa: E402

UNUSABLE = "!"  # an unusable password hash: these recipients never sign in


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values_ms), 2),
        "p95": round(percentile(values_ms, 0.95), 2),
        "min": round(min(values_ms), 2),
        "max": round(max(values_ms), 2),
    }


def start_worker(logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / "jobs-worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "--concurrency", "2",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", "bench-jobs@%h",
         "-I", "bench.jobs_worker_tasks"],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[f"bench-jobs@{os.uname().nodename}"], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the benchmark's worker did not start")
    return process


def empty_round_trips(count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        empty.delay().get(timeout=30)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _now_into(moments: list[float]) -> None:
    moments.append(time.perf_counter())


# perf_counter -> wall clock, to set the inbox's moments beside the rows' timestamps.
WALL_OFFSET = time.time() - time.perf_counter()


def event_to_inbox(
    tenant: Any, count: int, moments: list[tuple[str, float, float]] | None = None
) -> list[float]:
    times = []
    with tenant_context(tenant):
        for _ in range(count):
            email = f"u{uuid.uuid4().hex[:12]}@bench.test"
            committed: list[float] = []
            with transaction.atomic():
                # Registered first, so it runs first on commit: before the event goes out.
                transaction.on_commit(functools.partial(_now_into, committed))
                user_create(email=email, password=uuid.uuid4().hex)
            accepted = INBOX.wait_for(email)
            times.append((accepted - committed[0]) * 1000)
            if moments is not None:
                moments.append((email, committed[0] + WALL_OFFSET, accepted + WALL_OFFSET))
    return times


def stages(tenant: Any, moments: list[tuple[str, float, float]]) -> dict[str, float]:
    """Median ms of each leg of event_to_inbox, from the rows' own timestamps.

    commit -> consumed: the event's signal, the enqueue, the broker, the worker
    picking the task up and marking the event consumed; consumed -> notified:
    the user read, templates rendered, notification row written; notified ->
    sent: deliveries written, committed, the SMTP session and the message sent
    (sent_at is taken after the server accepted it); sent -> accepted: what is
    left (negative: the server's moment came first, as it should).
    """
    from apps.jobs.models import ConsumedEvent
    from apps.notifications.models import Delivery, Notification

    legs: dict[str, list[float]] = {
        "commit_to_consumed": [], "consumed_to_notified": [], "notified_to_sent": [],
        "sent_row_to_accepted": [], "committed_to_sent_row": [],
    }  # fmt: skip
    with tenant_context(tenant):
        for email, committed, accepted in moments:
            notification = Notification.objects.get(recipient__email=email, type="welcome")
            consumed = ConsumedEvent.objects.get(
                consumer="notifications.welcome", event_id=str(notification.source_event_id)
            ).consumed_at.timestamp()
            sent_at = Delivery.objects.get(notification=notification, channel="email").sent_at
            if sent_at is None:
                raise RuntimeError(f"the welcome to {email} was accepted but is not sent")
            sent = sent_at.timestamp()
            notified = notification.created_at.timestamp()
            legs["commit_to_consumed"].append((consumed - committed) * 1000)
            legs["consumed_to_notified"].append((notified - consumed) * 1000)
            legs["notified_to_sent"].append((sent - notified) * 1000)
            legs["sent_row_to_accepted"].append((accepted - sent) * 1000)
            legs["committed_to_sent_row"].append((sent - committed) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in legs.items()}


def raw_send_mail(addresses: list[str]) -> float:
    before = INBOX.count
    started = time.perf_counter()
    for address in addresses:
        send_mail("Raw", "A raw message.", None, [address])
    INBOX.wait_count(before + len(addresses))
    return len(addresses) / (time.perf_counter() - started)


def batch(tenant: Any, sender: User, user_ids: list[int]) -> float:
    before = INBOX.count
    with tenant_context(tenant):
        started = time.perf_counter()
        batch_create(
            sender=sender,
            grants=user_grants(sender),
            type="announcement",
            title=f"Announcement {uuid.uuid4().hex[:6]}",
            body="To everyone.",
            channels=["email"],
            users=user_ids,
        )
    finished = INBOX.wait_count(before + len(user_ids))
    return len(user_ids) / (finished - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--bulk", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=Path, default=ROOT / ".local")
    args = parser.parse_args()

    provisioned = tenant_create(
        name="Bench Jobs", slug="bench-jobs", admin_email="owner@bench.test"
    )
    tenant, owner = provisioned.tenant, provisioned.admin
    with tenant_context(tenant):
        recipients = User.objects.bulk_create(
            [
                User(email=f"r{i}@bulk.bench.test", username=f"bulk{i}", password=UNUSABLE)
                for i in range(args.bulk)
            ]
        )
    recipient_ids = [u.pk for u in recipients]
    worker = start_worker(args.logs)
    try:
        empty_round_trips(20)  # warm both sides: connections, imports, templates
        event_to_inbox(tenant, 5)
        empty_ms = empty_round_trips(args.users)
        moments: list[tuple[str, float, float]] = []
        latency_ms = event_to_inbox(tenant, args.users, moments)
        latency_stages = stages(tenant, moments)
        rates: dict[str, list[float]] = {"raw_send_mail": [], "batch": []}
        for round_number in range(args.rounds):
            addresses = [f"{round_number}-{i}@raw.bench.test" for i in range(args.bulk)]
            rates["raw_send_mail"].append(raw_send_mail(addresses))
            rates["batch"].append(batch(tenant, owner, recipient_ids))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        CONTROLLER.stop()
    print(
        json.dumps(
            {
                "users": args.users,
                "empty_tasks": args.users,
                "latency_ms": summary(latency_ms),
                "empty_task_ms": summary(empty_ms),
                "latency_stages_ms": latency_stages,
                "bulk": args.bulk,
                "rounds": args.rounds,
                "bulk_per_second": {k: round(statistics.median(v), 1) for k, v in rates.items()},
                "bulk_rounds_per_second": {k: [round(x, 1) for x in v] for k, v in rates.items()},
                "worker_concurrency": 2,
            }
        )
    )


if __name__ == "__main__":
    main()
