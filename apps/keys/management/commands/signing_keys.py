from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.keys.services import signing_key_list


def keys_table() -> str:
    now = timezone.now()
    lines = [f"{'kid':<44} {'alg':<6} {'state':<10} {'activated':<20} {'accepted until':<20}"]
    for key in signing_key_list():
        if key.retired_at is not None or (key.not_after is not None and key.not_after <= now):
            state = "retired"
        elif key.is_signing:
            state = "signing"
        else:
            state = "grace"
        until = key.not_after.strftime("%Y-%m-%d %H:%M:%S") if key.not_after else "-"
        activated = key.activated_at.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{key.kid:<44} {key.algorithm:<6} {state:<10} {activated:<20} {until:<20}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "List the token signing keys: signing, in their grace period, or retired."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(keys_table())
