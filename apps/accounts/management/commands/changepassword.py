"""Django's `changepassword`, setting the password through the password service.

Django's own command writes the hash and nothing else: the user's sessions and bearer
tokens kept working, and no audit row or security notice followed. This one (found first:
apps.accounts is listed before django.contrib.auth) ends every session and access token
of the user, writes the audit row and sends the notice, as the admin's password page
does. Run it for a tenant with `tenant_command changepassword --schema=<slug> <email>`;
without a schema it changes a platform operator's password (public schema).
"""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth.management.commands import changepassword
from django.core.management.base import CommandError, CommandParser

from apps.accounts.models import User
from apps.accounts.services.passwords import password_set
from apps.core.errors import ValidationError
from apps.core.tenancy import current_schema

MAX_TRIES = 3


class Command(changepassword.Command):
    help = (
        "Set a user's password (by e-mail): ends every session and access token of the "
        "user, writes an audit row and sends the security notice. For a tenant's user: "
        "`tenant_command changepassword --schema=<slug> <email>`."
    )

    def _get_pass(self, prompt: str = "Password: ") -> str:
        password = getpass.getpass(prompt=prompt)
        if not password:
            raise CommandError("aborted")
        return password

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the user's e-mail address")
        # Kept so scripts written for Django's command still parse; one database here.
        parser.add_argument("--database", default="default", help="ignored (one database)")

    def handle(self, *args: Any, **options: Any) -> str:
        email = str(options["email"])
        user = User.objects.with_email(email).first()
        if user is None:
            raise CommandError(f"No user '{email}' in schema '{current_schema()}'.")
        self.stdout.write(f"Changing the password of '{user.email}' (schema {current_schema()})")
        for _ in range(MAX_TRIES):
            first = self._get_pass()
            if first != self._get_pass("Password (again): "):
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                ended = password_set(user=user, new_password=first, how="admin")
            except ValidationError as exc:
                problems = exc.details.get("password", []) if isinstance(exc.details, dict) else []
                self.stderr.write("\n".join(map(str, problems)) or exc.message)
                continue
            return (
                f"Password changed for '{user.email}'; {ended} session(s) ended, every "
                "earlier access token refused."
            )
        raise CommandError(f"Password of '{user.email}' not changed after {MAX_TRIES} attempts.")
