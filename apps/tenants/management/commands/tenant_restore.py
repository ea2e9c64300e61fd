from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import PlatformError
from apps.tenants.lifecycle import tenant_restore
from apps.tenants.management.errors import command_error
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Restore a tenant pending deletion (before its schema is dropped): active again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = str(options["slug"]).strip().lower()
        tenant = Tenant.objects.customers().filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant '{slug}' (a dropped tenant cannot be restored).")
        if not tenant.is_deleted:
            self.stdout.write(f"Tenant '{slug}' is not pending deletion: nothing to do.")
            return
        try:
            tenant_restore(tenant=tenant)
        except PlatformError as exc:
            raise command_error(exc) from exc
        self.stdout.write(self.style.SUCCESS(f"Tenant '{slug}' is restored and active again."))
