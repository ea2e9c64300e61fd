from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.core.errors import PlatformError
from apps.tenants.exports import export_dir, tenant_export
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Write an archive of one tenant's data (a zip: JSON Lines per model and a manifest), "
        "for `tenant_import`. It holds password hashes: keep it as you keep database backups."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the tenant to export")
        parser.add_argument(
            "--output",
            "-o",
            type=Path,
            help="the archive to write (default: <slug>-<UTC time>.zip in TENANT_EXPORT_DIR)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"].strip().lower()
        tenant = Tenant.objects.customers().filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug '{slug}'.")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        output: Path = options["output"] or export_dir() / f"{tenant.slug}-{stamp}.zip"
        if output.exists():
            raise CommandError(f"{output} exists already; name another file with --output.")
        try:
            written = tenant_export(tenant=tenant, destination=output, actor=None)
        except PlatformError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Tenant '{tenant.slug}' exported."))
        self.stdout.write(f"  archive: {written.path}")
        self.stdout.write(f"  size:    {written.size} bytes")
        self.stdout.write(f"  sha256:  {written.sha256}")
        for label, count in written.manifest.counts.items():
            self.stdout.write(f"  {label}: {count}")
