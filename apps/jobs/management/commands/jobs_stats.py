from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Q
from django_tenants.utils import schema_context

from apps.core.tenancy import public_schema, tenant_schema_names
from apps.jobs.models import JobFailure, OutboxEvent


class Command(BaseCommand):
    help = (
        "Background work at a glance: outbox events pending/dispatched per schema, job "
        "failures (not yet retried) per task, notification deliveries per status per tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args: Any, **options: Any) -> None:
        stats = jobs_stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats, indent=2))
            return
        self.stdout.write("Outbox events (pending / dispatched):")
        for schema, counts in stats["outbox"].items():
            self.stdout.write(f"  {schema:<30} {counts['pending']:>8} / {counts['dispatched']}")
        self.stdout.write("Job failures (open / total):")
        if not stats["job_failures"]:
            self.stdout.write("  none")
        for task, counts in stats["job_failures"].items():
            self.stdout.write(f"  {task:<40} {counts['open']:>6} / {counts['total']}")
        self.stdout.write("Deliveries by status:")
        for schema, by_status in stats["deliveries"].items():
            summary = ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())) or "none"
            self.stdout.write(f"  {schema:<30} {summary}")


def jobs_stats() -> dict[str, Any]:
    schemas = [
        public_schema(),
        *tenant_schema_names(active_only=False),
    ]
    outbox: dict[str, dict[str, int]] = {}
    deliveries: dict[str, dict[str, int]] = {}
    delivery_model = (
        apps.get_model("notifications", "Delivery")
        if apps.is_installed("apps.notifications")
        else None
    )
    for schema in schemas:
        with schema_context(schema):
            outbox[schema] = OutboxEvent.objects.aggregate(
                pending=Count("id", filter=Q(dispatched_at__isnull=True)),
                dispatched=Count("id", filter=Q(dispatched_at__isnull=False)),
            )
            if delivery_model is not None and schema != public_schema():
                rows = delivery_model.objects.values("status").annotate(n=Count("id"))
                deliveries[schema] = {row["status"]: row["n"] for row in rows}
    with schema_context(public_schema()):
        failures = {
            row["task_name"]: {"open": row["open"], "total": row["total"]}
            for row in JobFailure.objects.values("task_name")
            .annotate(total=Count("id"), open=Count("id", filter=Q(retried_at__isnull=True)))
            .order_by("task_name")
        }
    return {"outbox": outbox, "job_failures": failures, "deliveries": deliveries}
