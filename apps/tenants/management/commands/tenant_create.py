from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.core.errors import PlatformError
from apps.tenants.links import tenant_url
from apps.tenants.management.errors import command_error
from apps.tenants.services import tenant_create


class Command(BaseCommand):
    help = "Provision a tenant: schema (cloned from the template), primary domain and first admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--slug", required=True, help="DNS label; the host becomes <slug>.<base domain>"
        )
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", help="omit to have one generated and printed once")
        parser.add_argument("--admin-full-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = tenant_create(
                name=options["name"],
                slug=options["slug"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
                admin_full_name=options["admin_full_name"],
            )
        except PlatformError as exc:
            raise command_error(exc) from exc
        self.stdout.write(self.style.SUCCESS(f"Tenant '{result.tenant.slug}' created."))
        self.stdout.write(f"  schema:   {result.tenant.schema_name}")
        self.stdout.write(f"  site:     {tenant_url(result.domain.domain)}")
        admin_site = tenant_url(result.domain.domain, path="/admin/")
        self.stdout.write(f"  admin:    {result.admin.email}   (signs in at {admin_site})")
        if result.generated_password:
            self.stdout.write(f"  password: {result.generated_password}   (shown this once)")
