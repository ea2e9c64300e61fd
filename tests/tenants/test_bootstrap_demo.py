"""platform_bootstrap as `python3 run.py` calls it: credentials kept in a file only its owner
reads, and a demo tenant whose admin pages have something to show, made through the services."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.jobs.models import OutboxEvent
from apps.organizations.models import Membership, Organization
from apps.rbac.models import RoleAssignment
from apps.tenants.models import Tenant


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_created_credentials_go_to_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    credentials = tmp_path / "local" / "credentials.txt"

    first = run("platform_bootstrap", "--demo", "--credentials-file", str(credentials))

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    kept = credentials.read_text()
    printed = [line for line in first.splitlines() if "password:" in line]
    assert len(printed) == 2 and all(line in kept for line in printed)
    assert "operator@localhost" in kept and "admin@acme.localhost" in kept
    assert f"kept in {credentials} (readable by you only)" in first
    # The operator comes through the accounts service, as createsuperuser's do.
    operator = User.objects.get(email="operator@localhost")
    assert operator.is_staff and operator.is_superuser
    assert AuditEvent.objects.filter(action="user.created", target_id=str(operator.pk)).exists()

    second = run("platform_bootstrap", "--demo", "--credentials-file", str(credentials))

    assert "password:" not in second
    assert f"credentials in {credentials}" in second
    assert credentials.read_text() == kept  # nothing new, nothing lost


@pytest.mark.django_db
def test_an_existing_wider_file_is_narrowed_before_a_password_is_written(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.txt"
    credentials.write_text("# older\n")
    credentials.chmod(0o644)

    run("platform_bootstrap", "--credentials-file", str(credentials))

    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert credentials.read_text().startswith("# older\n")


@pytest.mark.django_db
def test_the_demo_tenant_gets_a_sample_tree_and_members_through_the_services() -> None:
    output = run("platform_bootstrap", "--demo")

    assert "sample data created" in output
    demo = Tenant.objects.get(slug="acme")
    with tenant_context(demo):
        tree = {o.name: (o.parent.name if o.parent else None) for o in Organization.objects.all()}
        assert tree == {
            "Acme": None,
            "Engineering": "Acme",
            "Platform": "Engineering",
            "Sales": "Acme",
        }
        members = {
            (m.user.email, m.organization.name, m.title)
            for m in Membership.objects.select_related("user", "organization")
        }
        assert members == {
            ("alice@acme.localhost", "Engineering", "Head of Engineering"),
            ("bob@acme.localhost", "Platform", "Platform engineer"),
            ("carol@acme.localhost", "Sales", "Account executive"),
        }
        scoped = RoleAssignment.objects.get(user__email="alice@acme.localhost", role__name="admin")
        assert scoped.organization is not None and scoped.organization.name == "Engineering"
        # The services' side effects: a user.created event (the welcome mail) and audit rows.
        created = OutboxEvent.objects.filter(event_type="user.created")
        assert {e.data["email"] for e in created} >= {
            "alice@acme.localhost",
            "bob@acme.localhost",
            "carol@acme.localhost",
        }
        assert AuditEvent.objects.filter(action="organization.created").count() == 4
        assert AuditEvent.objects.filter(action__startswith="role.").exists()
        before = (User.objects.count(), Organization.objects.count(), Membership.objects.count())

    again = run("platform_bootstrap", "--demo")

    assert "sample data created" not in again
    with tenant_context(demo):
        after = (User.objects.count(), Organization.objects.count(), Membership.objects.count())
    assert after == before
