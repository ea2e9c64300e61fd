"""Django's `createsuperuser`, creating through the accounts service.

Django's own command saved the row and nothing else: no `user.created` event (so no
welcome mail), no audit row, and in a tenant no owner role (roles are what the API
checks). This one (found first: apps.accounts is listed before django.contrib.auth) goes
through `superuser_create`, with the API's checks on the address, name and password.
For a tenant: `tenant_command createsuperuser --schema=<slug> --email=...`.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.services.users import superuser_create
from apps.core.admin_site import refusal_text
from apps.core.errors import PlatformError
from apps.core.tenancy import current_schema

PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105 (a variable's name)


class Command(BaseCommand):
    help = (
        "Create a superuser (staff, superuser; in a tenant also the owner role) through the "
        "accounts service: an audit row and the user.created event follow. Without "
        f"--noinput it asks for what is missing; with it the password comes from "
        f"{PASSWORD_VARIABLE} (unset: no password sign-in until one is set)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", help="the superuser's e-mail address (sign-in)")
        parser.add_argument("--username", help="default: from the e-mail address")
        parser.add_argument("--full-name", "--full_name", dest="full_name", default="")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="ask nothing: --email is required, the password from " + PASSWORD_VARIABLE,
        )
        parser.add_argument("--database", default="default", help="ignored (one database)")

    def _get_pass(self, prompt: str) -> str:
        return getpass.getpass(prompt=prompt)

    def handle(self, *args: Any, **options: Any) -> None:
        interactive = bool(options["interactive"])
        email = str(options["email"] or "").strip()
        if not email and interactive:
            email = input("Email address: ").strip()
        if not email:
            raise CommandError("An e-mail address is required (--email).")
        password = os.environ.get(PASSWORD_VARIABLE) or None
        if interactive and password is None:
            password = self._get_pass("Password: ")
            if password != self._get_pass("Password (again): "):
                raise CommandError("The passwords do not match: nothing was created.")
        try:
            user = superuser_create(
                email=email,
                password=password,
                username=options["username"] or None,
                full_name=str(options["full_name"] or ""),
            )
        except PlatformError as exc:
            raise CommandError(f"Not created: {refusal_text(exc)}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Superuser '{user.email}' created in schema '{current_schema()}'."
                + ("" if password else " No password yet: set one with changepassword.")
            )
        )
