from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.accounts.services.users import superuser_create, user_create
from apps.jobs.schedules import schedules_ensure
from apps.organizations.models import Membership, Organization
from apps.organizations.services import member_add, organization_create
from apps.rbac.catalogue import OWNER
from apps.rbac.models import Role
from apps.rbac.services import role_assign
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create

DEMO_SLUG = "acme"


@dataclass(frozen=True)
class SampleUser:
    local_part: str
    full_name: str
    organization: str
    title: str
    role: str | None = None  # a system role granted in the member's organization's subtree


# The demo tenant's sample, so every admin page has something to show: a tree of
# organizations (parent's name first) and a few members with titles and roles.
SAMPLE_ORGANIZATIONS: tuple[tuple[str, str, str | None], ...] = (
    ("Acme", "company", None),
    ("Engineering", "department", "Acme"),
    ("Platform", "team", "Engineering"),
    ("Sales", "department", "Acme"),
)
SAMPLE_USERS: tuple[SampleUser, ...] = (
    SampleUser("alice", "Alice Archer", "Engineering", "Head of Engineering", role="admin"),
    SampleUser("bob", "Bob Baker", "Platform", "Platform engineer"),
    SampleUser("carol", "Carol Chen", "Sales", "Account executive"),
)


def demo_sample_ensure(*, tenant: Tenant) -> list[str]:
    """Create the sample's missing parts in `tenant` through the services (events, audit and
    the welcome mail as for any other), as its owner; return what was created. A tenant that
    already has organizations of its own is left alone, so a second run, or a sample
    someone has since edited, gets nothing new."""
    created: list[str] = []
    with tenant_context(tenant):
        if Organization.objects.exists():
            return created
        owner = (
            User.objects.live()
            .filter(is_active=True, role_assignments__role__system_key=OWNER)
            .order_by("id")
            .first()
        )
        organizations: dict[str, Organization] = {}
        for name, type_, parent in SAMPLE_ORGANIZATIONS:
            organizations[name] = organization_create(
                actor=owner,
                name=name,
                type=type_,
                parent_id=organizations[parent].pk if parent else None,
            )
            created.append(f"organization {name}")
        domain = tenant.get_primary_domain()
        for sample in SAMPLE_USERS:
            email = f"{sample.local_part}@{domain.domain if domain else tenant.slug}"
            user = User.objects.live().filter(email=email).first()
            if user is None:
                # No password: the sample shows in the admin; a reset link signs them in.
                user = user_create(email=email, password=None, full_name=sample.full_name)
                created.append(f"user {email}")
            organization = organizations[sample.organization]
            if not Membership.objects.filter(organization=organization, user=user).exists():
                member_add(
                    actor=owner, organization=organization, user_id=user.pk, title=sample.title
                )
            if sample.role and owner is not None:
                role_assign(
                    actor=owner,
                    user=user,
                    role=Role.objects.get(system_key=sample.role),
                    organization=organization,
                )
    return created


class Command(BaseCommand):
    help = (
        "Idempotent first-run setup: a platform operator on the public host, the default "
        "periodic jobs, and (with --demo) the demo tenant 'acme'. Credentials are printed "
        "only when an account is created."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="create the demo tenant 'acme'")
        parser.add_argument("--port", type=int, default=8000, help="port shown in the printed URLs")
        parser.add_argument(
            "--credentials-file",
            type=Path,
            help="also append the created credentials to this file (readable by its owner only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = settings.PLATFORM_BASE_DOMAIN
        port = options["port"]
        suffix = "" if port == 80 else f":{port}"
        created_lines: list[str] = []

        schedules_ensure()

        if not User.objects.live().filter(is_staff=True, is_superuser=True).exists():
            email = f"operator@{base}"
            password = secrets.token_urlsafe(12)
            # Through the accounts service, as createsuperuser: audit row and user.created.
            superuser_create(
                email=email, password=password, username="operator", full_name="Platform operator"
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
        if options["demo"]:
            demo = Tenant.objects.filter(slug=DEMO_SLUG).first()
            if demo is not None:
                sample = demo_sample_ensure(tenant=demo)
                if sample:
                    organizations = sum(item.startswith("organization ") for item in sample)
                    self.stdout.write(
                        f"Demo tenant 'acme': sample data created ({organizations} "
                        f"organizations, {len(sample) - organizations} users with their roles)"
                    )

        credentials_file: Path | None = options.get("credentials_file")
        if created_lines:
            if credentials_file is not None:
                credentials_append(credentials_file, created_lines)
                kept = f"kept in {credentials_file} (readable by you only) and not shown again"
            else:
                kept = "the passwords are not stored anywhere and not shown again"
            bar = "=" * 72
            self.stdout.write(bar)
            self.stdout.write(f"Created now; {kept}:")
            for line in created_lines:
                self.stdout.write(line)
            self.stdout.write(bar)
        else:
            where = (
                f"in {credentials_file}"
                if credentials_file is not None and credentials_file.exists()
                else "printed on the first run"
            )
            self.stdout.write(
                f"Operator and demo tenant already exist (credentials {where}; "
                "reset with `python3 run.py manage changepassword <email>` or "
                "`python3 run.py manage tenant_command changepassword --schema=acme <email>`)."
            )
        self.stdout.write(
            f"API docs: http://{base}{suffix}/api/docs/   health: http://{base}{suffix}/health/ready"
        )


def credentials_append(path: Path, lines: list[str]) -> None:
    """Append to `path`, created (or narrowed) to mode 0600: the passwords are for its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        os.fchmod(handle.fileno(), 0o600)
        stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        handle.write(f"# created {stamp} (a password changed since is not updated here)\n")
        handle.write("".join(f"{line}\n" for line in lines))
