from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.rbac.endpoints import markdown_table


class Command(BaseCommand):
    help = "Print every API endpoint with the permission it needs, as a Markdown table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--public", action="store_true", help="The public host's API instead of a tenant's."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        urlconf = "platform_site.urls_public" if options["public"] else "platform_site.urls"
        self.stdout.write(markdown_table(urlconf))
