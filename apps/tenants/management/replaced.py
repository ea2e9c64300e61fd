"""django-tenants' commands that would change tenants without the services, replaced.

Django runs, of two commands with one name, the one of the app listed first in
INSTALLED_APPS (apps.tenants is listed before django_tenants for this): these
take the names of django-tenants' commands and only say which command (or page)
does the job through the services, so events, audit, the template clone and the
cache invalidation always follow. They change nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class ReplacedCommand(BaseCommand):
    replacement: str = ""

    @property
    def help(self) -> str:  # type: ignore[override]
        return f"Not available here: {self.replacement}"

    def run_from_argv(self, argv: list[str]) -> None:
        # Whatever options django-tenants' version took (--schema_name=..., -s), the answer
        # is the same: they are not parsed, so none is refused as unknown first.
        super().run_from_argv(argv[:2])

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(f"Not available here: {self.replacement}")
