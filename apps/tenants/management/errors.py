from __future__ import annotations

from django.core.management.base import CommandError

from apps.core.errors import PlatformError


def command_error(exc: PlatformError) -> CommandError:
    """A service's refusal as a command's error: its code, message and each field's problems."""
    details = "; ".join(
        f"{name}: {' '.join(map(str, problems if isinstance(problems, list) else [problems]))}"
        for name, problems in exc.details.items()
    )
    return CommandError(f"{exc.code}: {exc.message}" + (f" ({details})" if details else ""))
