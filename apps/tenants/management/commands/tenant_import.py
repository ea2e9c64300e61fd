from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import PlatformError
from apps.tenants.domains import tenant_hostname
from apps.tenants.imports import tenant_import


class Command(BaseCommand):
    help = (
        "Create a new tenant from an archive written by `tenant_export`: its users (who sign "
        "in with their passwords), roles, organizations and the rest, all or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="the archive (.zip) to import")
        parser.add_argument("slug", help="the new tenant's slug: its host is <slug>.<base domain>")
        parser.add_argument("--name", help="the new tenant's name (default: the source's)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = tenant_import(
                archive_path=options["archive"], slug=options["slug"], name=options["name"]
            )
        except PlatformError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.details.items())
            message = exc.message if "archive" in exc.details else f"{exc.message} ({details})"
            raise CommandError(
                f"{exc.code}: {message}" if details else f"{exc.code}: {exc.message}"
            ) from exc
        tenant = result.tenant
        self.stdout.write(
            self.style.SUCCESS(f"Tenant '{tenant.slug}' imported from '{result.source.slug}'.")
        )
        self.stdout.write(f"  schema: {tenant.schema_name}")
        self.stdout.write(f"  host:   {tenant_hostname(tenant.slug)}")
        for label, count in result.counts.items():
            self.stdout.write(f"  {label}: {count}")
        for note in result.notes:
            self.stdout.write(self.style.WARNING(f"Note: {note}"))
