from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from apps.accounts.models import User
from apps.core.schedules import schedules_ensure
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create

DEMO_SLUG = "acme"


class Command(BaseCommand):
    help = (
        "Idempotent first-run setup: a platform operator on the public host, the default "
        "periodic jobs, and (with --demo) the demo tenant 'acme'. Credentials are printed "
        "only when an account is created."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="create the demo tenant 'acme'")
        parser.add_argument("--port", type=int, default=8000, help="port shown in the printed URLs")

    def handle(self, *args: Any, **options: Any) -> None:
        base = settings.PLATFORM_BASE_DOMAIN
        port = options["port"]
        suffix = "" if port == 80 else f":{port}"
        created_lines: list[str] = []

        schedules_ensure()

        if not User.objects.live().filter(is_staff=True, is_superuser=True).exists():
            email = f"operator@{base}"
            password = secrets.token_urlsafe(12)
            with transaction.atomic():
                User.objects.create_superuser(
                    email, password, username="operator", full_name="Platform operator"
                )
            created_lines += [
                f"Platform operator   http://{base}{suffix}/admin/",
                f"  email:    {email}",
                f"  password: {password}",
            ]

        if options["demo"] and not Tenant.objects.filter(slug=DEMO_SLUG).exists():
            result = tenant_create(
                name="Acme Corporation",
                slug=DEMO_SLUG,
                admin_email=f"admin@{DEMO_SLUG}.{base}",
                admin_full_name="Acme Admin",
            )
            created_lines += [
                f"Demo tenant 'acme'  http://{result.domain.domain}{suffix}/admin/",
                f"  email:    {result.admin.email}",
                f"  password: {result.generated_password}",
            ]

        if created_lines:
            bar = "=" * 72
            self.stdout.write(bar)
            self.stdout.write(
                "Created now; the passwords are not stored anywhere and not shown again:"
            )
            for line in created_lines:
                self.stdout.write(line)
            self.stdout.write(bar)
        else:
            self.stdout.write(
                "Operator and demo tenant already exist (credentials were printed on the first run; "
                "reset with `python3 run.py manage changepassword <email>` or "
                "`python3 run.py manage tenant_command changepassword --schema=acme <email>`)."
            )
        self.stdout.write(
            f"API docs: http://{base}{suffix}/api/docs/   health: http://{base}{suffix}/health/ready"
        )
