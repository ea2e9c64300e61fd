from __future__ import annotations

import json
from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import get_tenant_model, schema_context, tenant_context

from apps.jobs.events import outbox_relay
from apps.jobs.periodic import TENANT_JOBS, job_enqueue, tenant_job_task

RELAY = "outbox_relay"


class Command(BaseCommand):
    help = (
        "Run a background job now, for one tenant or every active tenant: inline (the "
        "default, result printed) or queued for the worker (--queue; a tenant whose "
        "previous run is still pending is skipped). Jobs: cleanup_expired_sessions, "
        "sync_user_data, requeue_stale_deliveries, outbox_relay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--tenant", metavar="SLUG", help="one tenant (a deactivated one's job is skipped)"
        )
        which.add_argument(
            "--all", action="store_true", help="every active tenant (and public, for the relay)"
        )
        parser.add_argument("--queue", action="store_true", help="send to the worker instead")

    def handle(self, *args: Any, **options: Any) -> None:
        job: str = options["job"]
        if job != RELAY and job not in TENANT_JOBS:
            known = ", ".join([*sorted(TENANT_JOBS), RELAY])
            raise CommandError(f"Unknown job {job!r}; known: {known}")
        tenants = self._tenants(options["tenant"])
        if job == RELAY:
            self._relay(tenants, queue=options["queue"], everything=options["all"])
            return
        for tenant in tenants:
            if options["queue"]:
                task_id = job_enqueue(job, tenant.schema_name)
                outcome = f"queued {task_id}" if task_id else "skipped: previous run still pending"
            else:
                with tenant_context(tenant):
                    outcome = json.dumps(tenant_job_task(job)())
            self.stdout.write(f"{job} [{tenant.slug}] {outcome}")

    def _tenants(self, slug: str | None) -> list[Any]:
        tenants = get_tenant_model().objects.customers()
        if slug is None:
            return list(tenants.runnable().order_by("id"))
        tenant = tenants.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant {slug!r}.")
        return [tenant]

    def _relay(self, tenants: list[Any], *, queue: bool, everything: bool) -> None:
        if queue:
            if not everything:
                raise CommandError("The queued relay covers every tenant: use --all.")
            result = current_app.send_task("core.outbox_relay")
            self.stdout.write(f"{RELAY} [all] queued {result.id}")
            return
        schemas = (["public"] if everything else []) + [t.schema_name for t in tenants]
        for schema in schemas:
            with schema_context(schema):
                sent = outbox_relay()
            self.stdout.write(f"{RELAY} [{schema}] {json.dumps({'dispatched': sent})}")
