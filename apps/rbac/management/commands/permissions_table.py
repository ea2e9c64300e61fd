from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.rbac.endpoints import markdown_table

URLCONFS = {"tenant": "platform_site.urls", "public": "platform_site.urls_public"}


class Command(BaseCommand):
    help = "Print every API endpoint with the permission it needs, as a Markdown table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--public", action="store_true", help="The public host's API instead of a tenant's."
        )
        parser.add_argument(
            "--readme",
            metavar="PATH",
            help="Rewrite both tables in this file, between its permissions_table markers.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["readme"]:
            path = Path(options["readme"])
            text = path.read_text()
            for name, urlconf in URLCONFS.items():
                start, end = (
                    f"<!-- permissions_table:{name} -->",
                    f"<!-- /permissions_table:{name} -->",
                )
                pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
                if not pattern.search(text):
                    raise SystemExit(f"{path} has no {start} … {end} markers")
                replacement = f"{start}\n{markdown_table(urlconf)}\n{end}"
                text = pattern.sub(replacement.replace("\\", "\\\\"), text)
            path.write_text(text)
            self.stdout.write(f"rewrote the endpoint tables in {path}")
            return
        self.stdout.write(markdown_table(URLCONFS["public" if options["public"] else "tenant"]))
