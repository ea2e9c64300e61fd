from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import get_tenant_model, tenant_context

from apps.notifications.delivery_queue import deliveries_retry
from apps.notifications.models import Channel, Delivery


class Command(BaseCommand):
    help = (
        "Send failed notification deliveries again (attempts start over), in one tenant or "
        "every active tenant, optionally for one channel only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenant", metavar="SLUG", help="one tenant (default: every active one)"
        )
        parser.add_argument("--channel", choices=Channel.values)

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = get_tenant_model().objects.customers().order_by("id")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant {options['tenant']!r}.")
        else:
            tenants = tenants.filter(is_active=True)
        total = 0
        for tenant in tenants:
            with tenant_context(tenant):
                failed = Delivery.objects.filter(status=Delivery.Status.FAILED)
                if options["channel"]:
                    failed = failed.filter(channel=options["channel"])
                count = deliveries_retry(failed)
            total += count
            self.stdout.write(f"{tenant.slug}: {count} deliveries queued again")
        self.stdout.write(self.style.SUCCESS(f"{total} in all"))
