from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import PlatformError
from apps.tenants.lifecycle import tenant_delete
from apps.tenants.management.errors import command_error
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Delete a tenant: deactivated at once (its hosts answer 404), its schema and data "
        "dropped after TENANT_RETENTION_DAYS (restorable until then with tenant_restore), "
        "or at once with --now. Asks to repeat the slug unless --noinput."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--now",
            action="store_true",
            help="drop the schema and all its data at once: nothing can be restored",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = str(options["slug"]).strip().lower()
        tenant = Tenant.objects.customers().filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant '{slug}'.")
        now = bool(options["now"])
        if now:
            what = (
                f"Tenant '{slug}' and its schema '{tenant.schema_name}' with ALL its data "
                "will be dropped now. This cannot be undone."
            )
        else:
            what = (
                f"Tenant '{slug}' will be deactivated now (its hosts answer 404) and dropped, "
                f"schema and data, after {settings.TENANT_RETENTION_DAYS} days unless restored."
            )
        if options["interactive"]:
            self.stdout.write(what)
            try:
                answer = input(f"Type the tenant's slug ({slug}) to go on: ")
            except EOFError:
                raise CommandError("No answer: nothing was deleted (--noinput to skip).") from None
            if answer.strip().lower() != slug:
                raise CommandError("Not confirmed: nothing was deleted.")
        try:
            pending = tenant_delete(tenant=tenant, now=now)
        except PlatformError as exc:
            raise command_error(exc) from exc
        if pending is None:
            self.stdout.write(self.style.SUCCESS(f"Tenant '{slug}' and all its data were dropped."))
            return
        purge_after = pending.purge_after
        when = purge_after.strftime("%Y-%m-%d %H:%M UTC") if purge_after else "?"
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{slug}' is deleted: deactivated now, dropped after {when}. "
                f"Undo with `tenant_restore {slug}` until then."
            )
        )
