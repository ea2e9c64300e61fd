from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_exists, tenant_context

from apps.accounts.models import User
from apps.tenants.models import Tenant


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_tenant_create_command_prints_generated_password_once() -> None:
    output = run(
        "tenant_create", "--slug", "hooli", "--name", "Hooli", "--admin-email", "gavin@hooli.test"
    )
    assert "hooli.localhost" in output
    password = next(line.split()[1] for line in output.splitlines() if "password:" in line)
    assert schema_exists("hooli")
    with tenant_context(Tenant.objects.get(slug="hooli")):
        assert User.objects.get(email="gavin@hooli.test").check_password(password)


@pytest.mark.django_db
def test_tenant_create_command_reports_bad_input_clearly(tenant_a) -> None:
    with pytest.raises(CommandError, match=r"VALIDATION_ERROR.*slug"):
        run("tenant_create", "--slug", "www", "--name", "W", "--admin-email", "a@b.test")
    with pytest.raises(CommandError, match="CONFLICT"):
        run("tenant_create", "--slug", "alpha", "--name", "A", "--admin-email", "a@b.test")


@pytest.mark.django_db
def test_bootstrap_is_idempotent_and_prints_credentials_only_when_creating() -> None:
    from django_celery_beat.models import PeriodicTask

    first = run("platform_bootstrap", "--demo")
    assert "operator@localhost" in first and "admin@acme.localhost" in first
    assert first.count("password:") == 2
    assert PeriodicTask.objects.filter(name="core.outbox_relay").exists()
    operator = User.objects.get(email="operator@localhost")
    assert operator.is_superuser and operator.is_staff

    second = run("platform_bootstrap", "--demo")
    assert "password:" not in second
    assert "already exist" in second
    assert Tenant.objects.filter(slug="acme").count() == 1
    assert PeriodicTask.objects.filter(name="core.outbox_relay").count() == 1
