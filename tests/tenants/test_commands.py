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


@pytest.mark.django_db
def test_tenant_create_command_prints_where_the_tenant_is_reached_with_the_port(
    settings,
) -> None:
    settings.PLATFORM_URL_SCHEME = "http"
    settings.PLATFORM_URL_PORT = 8000

    output = run(
        "tenant_create", "--slug", "globex", "--name", "Globex", "--admin-email", "b@globex.test"
    )

    assert "site:     http://globex.localhost:8000/\n" in output
    assert "(signs in at http://globex.localhost:8000/admin/)" in output
    settings.PLATFORM_URL_PORT = None
    settings.PLATFORM_URL_SCHEME = "https"
    output = run("tenant_create", "--slug", "hooli", "--name", "H", "--admin-email", "g@hooli.test")
    assert "site:     https://hooli.localhost/\n" in output


def _provision(slug: str) -> Tenant:
    run("tenant_create", "--slug", slug, "--name", slug.title(), "--admin-email", f"a@{slug}.test")
    return Tenant.objects.get(slug=slug)


@pytest.mark.django_db
def test_tenant_delete_command_asks_for_the_slug_then_deletes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _provision("hooli")
    monkeypatch.setattr("builtins.input", lambda prompt: "not-it")
    with pytest.raises(CommandError, match="Not confirmed"):
        run("tenant_delete", "hooli")
    tenant.refresh_from_db()
    assert tenant.deleted_at is None and tenant.is_active

    monkeypatch.setattr("builtins.input", lambda prompt: "hooli")
    output = run("tenant_delete", "hooli")

    assert "tenant_restore hooli" in output
    tenant.refresh_from_db()
    assert tenant.deleted_at is not None and not tenant.is_active and schema_exists("hooli")

    assert "restored" in run("tenant_restore", "hooli")
    tenant.refresh_from_db()
    assert tenant.deleted_at is None and tenant.is_active


@pytest.mark.django_db
def test_tenant_delete_command_now_without_input_drops_everything() -> None:
    tenant = _provision("hooli")

    output = run("tenant_delete", "hooli", "--now", "--noinput")

    assert "all its data were dropped" in output
    assert not schema_exists("hooli") and not Tenant.objects.filter(pk=tenant.pk).exists()
    with pytest.raises(CommandError, match="No tenant 'hooli'"):
        run("tenant_restore", "hooli")
    with pytest.raises(CommandError, match="No tenant 'public'"):
        run("tenant_delete", "public", "--noinput")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "points_to"),
    [
        ("create_tenant", "tenant_create"),
        ("delete_tenant", "tenant_delete"),
        ("clone_tenant", "tenant_create"),
        ("rename_schema", "does not change"),
        ("create_domain", "public admin"),
        ("delete_domain", "public admin"),
        ("create_missing_schemas", "tenant_create"),
    ],
)
def test_django_tenants_commands_that_bypass_the_services_are_replaced(
    command: str, points_to: str, tenant_a
) -> None:
    from django.core.management import get_commands

    assert get_commands()[command] == "apps.tenants"
    tenants_before = list(Tenant.objects.values_list("pk", "schema_name", "is_active"))

    with pytest.raises(CommandError, match="Not available here") as refused:
        run(command)

    assert points_to in str(refused.value)
    assert list(Tenant.objects.values_list("pk", "schema_name", "is_active")) == tenants_before


def test_replaced_commands_refuse_whatever_options_they_are_given(capsys) -> None:
    from django.core.management import ManagementUtility

    utility = ManagementUtility(
        ["manage.py", "delete_tenant", "--schema_name=alpha", "--noinput", "-s"]
    )
    with pytest.raises(SystemExit) as exited:
        utility.execute()
    assert exited.value.code == 1
    assert "Not available here: use `tenant_delete <slug>`" in capsys.readouterr().err
