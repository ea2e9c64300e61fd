"""manage.py's user commands change data through the services, as the API and admin do:
`changepassword` ends sessions and tokens, audits and sends the notice; `createsuperuser`
creates through user_create (event, audit, the owner role in a tenant)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection
from apps.jobs.models import OutboxEvent
from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD, make_user
from tests.conftest import ADMIN_PASSWORD

ME = "/api/v1/users/me"
NEW_PASSWORD = "a-fresh-command-line-passphrase"


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the operator types at the password prompts, in order."""
    answers: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": answers.pop(0))
    return answers


@pytest.fixture
def manage(monkeypatch: pytest.MonkeyPatch):
    """Runs argv as `python3 run.py manage ...` does: parsed by Django's utility, so
    tenant_command's own `--schema=` handling (run_from_argv) is what runs. Its closing of
    every connection at the end is skipped: it would end the test's transaction."""
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)

    def run(*argv: str) -> None:
        ManagementUtility(["manage.py", *argv]).execute()

    return run


@pytest.mark.django_db
def test_changepassword_in_a_tenant_ends_tokens_audits_and_mails(
    api, tenant_a, typed, eager_tasks, manage, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a.tenant):
        make_user(email="member@alpha.test", username="member")
    client = Api(api, tenant_a.host)
    token = client.login("member@alpha.test")["access_token"]
    assert client.call("get", ME, token=token).status_code == 200

    typed += [NEW_PASSWORD, NEW_PASSWORD]
    with django_capture_on_commit_callbacks(execute=True):
        manage(
            "tenant_command", "changepassword", f"--schema={tenant_a.schema}", "member@alpha.test"
        )
    tenant_connection().set_schema_to_public()

    assert client.call("get", ME, token=token).status_code == 401
    client.login("member@alpha.test", NEW_PASSWORD)
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="member@alpha.test")
        assert AuditEvent.objects.filter(
            action="user.password_reset", target_id=str(user.pk)
        ).exists()
    assert [m.to for m in mail.outbox] == [["member@alpha.test"]]
    assert "set by an administrator" in mail.outbox[0].subject


@pytest.mark.django_db
def test_changepassword_of_an_operator_in_public(api, operator, typed, manage) -> None:
    public = Api(api, "localhost")
    token = public.login(operator.email, ADMIN_PASSWORD)["access_token"]
    assert public.call("get", "/api/v1/auth/sessions", token=token).status_code == 200

    typed += [NEW_PASSWORD, NEW_PASSWORD]
    manage("changepassword", operator.email)

    assert public.call("get", "/api/v1/auth/sessions", token=token).status_code == 401
    assert AuditEvent.objects.filter(
        action="user.password_reset", target_id=str(operator.pk)
    ).exists()
    assert OutboxEvent.objects.filter(event_type="auth.password_changed").exists()


@pytest.mark.django_db
def test_changepassword_refuses_a_weak_password_and_keeps_the_old(tenant_a, typed) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user(email="member@alpha.test", username="member")
        typed += ["short", "short", "1234", "4321", "password", "password"]
        with pytest.raises(CommandError, match="not changed"):
            call_command("changepassword", "member@alpha.test")
        user.refresh_from_db()
        assert user.check_password(PASSWORD)
        assert not AuditEvent.objects.filter(action="user.password_reset").exists()


@pytest.mark.django_db
def test_changepassword_of_nobody_says_so(tenant_a) -> None:
    with tenant_context(tenant_a.tenant), pytest.raises(CommandError, match="No user"):
        call_command("changepassword", "nobody@alpha.test")


# ------------------------------------------------------------------ createsuperuser


@pytest.mark.django_db
def test_createsuperuser_in_a_tenant_goes_through_the_service(
    tenant_a, manage, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        manage(
            "tenant_command", "createsuperuser", f"--schema={tenant_a.schema}",
            "--email=Boss@Alpha.test", "--noinput",
        )  # fmt: skip
    tenant_connection().set_schema_to_public()
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="boss@alpha.test")
        assert (user.is_staff, user.is_superuser) == (True, True)
        assert user.check_password(NEW_PASSWORD)
        assert AuditEvent.objects.filter(action="user.created", target_id=str(user.pk)).exists()
        assert OutboxEvent.objects.filter(event_type="user.created", data__user_id=user.pk).exists()
        roles = set(user.role_assignments.values_list("role__system_key", flat=True))
        assert "owner" in roles
    assert [m.to for m in mail.outbox] == [["boss@alpha.test"]]  # the welcome mail


@pytest.mark.django_db
def test_createsuperuser_in_public_makes_an_operator(manage, monkeypatch, typed) -> None:
    inputs = iter(["ops@localhost"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(inputs))
    typed += [NEW_PASSWORD, NEW_PASSWORD]
    manage("createsuperuser")
    user = User.objects.get(email="ops@localhost")
    assert (user.is_staff, user.is_superuser) == (True, True)
    assert AuditEvent.objects.filter(action="user.created", target_id=str(user.pk)).exists()


@pytest.mark.django_db
def test_createsuperuser_refuses_a_taken_address(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        make_user(email="member@alpha.test", username="member")
        with pytest.raises(CommandError, match="already registered"):
            call_command("createsuperuser", "--email=member@alpha.test", "--noinput")
