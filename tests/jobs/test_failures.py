"""What happens after a task's last try: one JobFailure row, secrets redacted, retried from the admin."""

from __future__ import annotations

import uuid

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.jobs.bases import tenant_task
from apps.jobs.models import JobFailure
from apps.jobs.retries import REDACTED, TRANSIENT_ERRORS, job_failure_record, redact


@tenant_task(name="jobs_test.permanent_bug")
def permanent_bug(marker: str, api_token: str = "") -> None:
    raise ValueError(f"a bug, not a hiccup ({marker})")


def test_transient_errors_are_the_ones_a_retry_can_fix() -> None:
    from kombu.exceptions import OperationalError as BrokerDown
    from redis.exceptions import ConnectionError as RedisDown

    from apps.notifications.channels.base import TransientProviderError

    for error in (OperationalError, BrokerDown, RedisDown, ConnectionError, TimeoutError,
                  TransientProviderError):  # fmt: skip
        assert issubclass(error, TRANSIENT_ERRORS)
    for permanent in (ValueError, KeyError, PermissionError):
        assert not issubclass(permanent, TRANSIENT_ERRORS)


def test_secrets_are_redacted_at_any_depth() -> None:
    value, changed = redact(
        [1, {"password": "hunter2", "nested": {"Authorization": "Bearer x", "ok": "kept"}}]
    )
    assert changed is True
    assert value == [1, {"password": REDACTED, "nested": {"Authorization": REDACTED, "ok": "kept"}}]
    assert redact({"user_id": 4, "email": "a@b.test"}) == (
        {"user_id": 4, "email": "a@b.test"},
        False,
    )


@pytest.mark.django_db
def test_a_permanent_error_is_not_retried_and_is_recorded_once(tenant_a) -> None:
    marker = uuid.uuid4().hex
    with tenant_context(tenant_a.tenant):
        result = permanent_bug.apply(args=[marker], kwargs={"api_token": "s3cret"}, throw=False)
    assert result.state == "FAILURE"
    [failure] = JobFailure.objects.filter(task_id=result.id)
    assert failure.task_name == "jobs_test.permanent_bug"
    assert failure.tenant_schema == tenant_a.schema
    assert failure.attempts == 1
    assert failure.exception_type == "builtins.ValueError"
    assert marker in failure.exception_message
    assert "raise ValueError" in failure.traceback
    assert failure.args == [marker]
    assert failure.kwargs == {"api_token": REDACTED}
    assert failure.is_redacted is True
    assert "s3cret" not in failure.traceback + failure.exception_message


@pytest.mark.django_db
def test_the_admin_lists_failures_for_operators_only_and_retries_them(
    operator, tenant_a, monkeypatch
) -> None:
    sent: list[tuple] = []

    def send_task(name, args=None, kwargs=None, **options):
        sent.append((name, args, kwargs, options["headers"]))

        class Result:
            id = "retry-1"

        return Result()

    from platform_site.celery import app

    monkeypatch.setattr(app, "send_task", send_task)
    plain = job_failure_record(
        task_name="notifications.welcome_send", task_id=uuid.uuid4().hex, schema=tenant_a.schema,
        args=["e-1", 7], kwargs={}, exception=ConnectionError("down"), traceback="tb", attempts=6,
    )  # fmt: skip
    secret = job_failure_record(
        task_name="accounts.password_reset_send", task_id=uuid.uuid4().hex,
        schema=tenant_a.schema, args=[], kwargs={"password": "x"}, exception=ValueError("bad"),
        traceback="tb", attempts=1,
    )  # fmt: skip
    assert plain is not None and secret is not None
    client = Client()
    client.force_login(operator)

    listing = client.get("/admin/jobs/jobfailure/", HTTP_HOST="localhost")
    assert listing.status_code == 200
    assert b"notifications.welcome_send" in listing.content
    response = client.post(
        "/admin/jobs/jobfailure/",
        {"action": "retry_selected", "_selected_action": [plain.pk, secret.pk]},
        HTTP_HOST="localhost",
    )
    assert response.status_code == 302
    assert sent == [
        ("notifications.welcome_send", ["e-1", 7], {}, {"_schema_name": tenant_a.schema})
    ]
    plain.refresh_from_db()
    secret.refresh_from_db()
    assert plain.retry_task_id == "retry-1"
    assert plain.retried_at is not None and plain.retried_at <= timezone.now()
    assert secret.retried_at is None  # redacted arguments cannot be sent again
    assert (
        client.get(f"/admin/jobs/jobfailure/{plain.pk}/change/", HTTP_HOST="localhost").status_code
        == 200
    )

    # A tenant's own admin never sees the platform's failures.
    tenant_admin = Client()
    with tenant_context(tenant_a.tenant):
        tenant_admin.force_login(tenant_a.admin())
    assert tenant_admin.get("/admin/jobs/jobfailure/", HTTP_HOST=tenant_a.host).status_code in (
        403,
        404,
    )
