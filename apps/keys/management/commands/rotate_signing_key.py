from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.keys.management.commands.signing_keys import keys_table
from apps.keys.services import signing_key_rotate, signing_keys_retire_expired


class Command(BaseCommand):
    help = (
        "Add a new token signing key and sign with it from now on. The previous key is "
        "still published and accepted until every token it signed has expired (refresh "
        "lifetime + leeway); keys past that are retired."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retire-expired",
            action="store_true",
            help="Only retire the keys past their grace period (no new key).",
        )
        parser.add_argument("--list", action="store_true", help="Only list the keys.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self.stdout.write(keys_table())
            return
        if options["retire_expired"]:
            kids = signing_keys_retire_expired()
            self.stdout.write(f"Retired {len(kids)} key(s){': ' + ', '.join(kids) if kids else ''}")
            return
        key = signing_key_rotate()
        self.stdout.write(self.style.SUCCESS(f"Signing with {key.kid} from now on."))
        self.stdout.write(keys_table())
