"""manage.py jobs_run, jobs_stats and deliveries_retry."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context

from apps.accounts.models import Session
from apps.jobs.models import OutboxEvent
from apps.jobs.retries import job_failure_record
from apps.jobs.run_flags import run_flag_key
from apps.notifications.models import Delivery, Notification
from platform_site.celery import app
from tests.accounts.factories import make_user


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_jobs_run_runs_a_job_now_in_one_tenant(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user()
        now = timezone.now()
        Session.objects.create(
            user=user, last_used_at=now, expires_at=now - timedelta(days=8), refresh_jti="x"
        )

    output = run("jobs_run", "cleanup_expired_sessions", "--tenant", tenant_a.tenant.slug)

    assert output.startswith(f"cleanup_expired_sessions [{tenant_a.tenant.slug}] ")
    assert json.loads(output.split("] ", 1)[1])["sessions"] == 1
    with tenant_context(tenant_a.tenant):
        assert not Session.objects.filter(user=user).exists()
    every = run("jobs_run", "sync_user_data", "--all")
    assert f"[{tenant_a.tenant.slug}]" in every and f"[{tenant_b.tenant.slug}]" in every


@pytest.mark.django_db
def test_jobs_run_queues_once_while_a_run_is_pending(tenant_a, monkeypatch) -> None:
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        app, "send_task", lambda name, **options: sent.append((name, options["headers"]))
    )
    try:
        first = run("jobs_run", "sync_user_data", "--tenant", tenant_a.tenant.slug, "--queue")
        second = run("jobs_run", "sync_user_data", "--tenant", tenant_a.tenant.slug, "--queue")
    finally:
        get_redis_connection("default").delete(run_flag_key("sync_user_data", tenant_a.schema))
    assert "queued" in first
    assert "still pending" in second
    assert sent == [
        (
            "accounts.sync_user_data",
            {"_schema_name": tenant_a.schema, "_platform_job": "sync_user_data"},
        )
    ]


@pytest.mark.django_db
def test_jobs_run_refuses_unknown_jobs_and_tenants() -> None:
    with pytest.raises(CommandError, match="Unknown job"):
        run("jobs_run", "make_coffee", "--all")
    with pytest.raises(CommandError, match="No tenant"):
        run("jobs_run", "sync_user_data", "--tenant", "nobody")


@pytest.mark.django_db
def test_jobs_run_relays_pending_events(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        # Rows a real worker committed in this shared tenant (tests/core/test_celery.py)
        # are not this test's: out of the count, in this test's transaction only.
        OutboxEvent.objects.filter(dispatched_at__isnull=True).update(dispatched_at=timezone.now())
        event = OutboxEvent.objects.create(
            event_type=f"test.{uuid.uuid4().hex[:6]}",
            source="tests",
            data={},
            occurred_at=timezone.now() - timedelta(minutes=5),
        )
    output = run("jobs_run", "outbox_relay", "--tenant", tenant_a.tenant.slug)
    assert output.strip() == f'outbox_relay [{tenant_a.schema}] {{"dispatched": 1}}'
    with tenant_context(tenant_a.tenant):
        event.refresh_from_db()
    assert event.dispatched_at is not None


@pytest.mark.django_db
def test_jobs_stats_counts_events_failures_and_deliveries(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        OutboxEvent.objects.create(event_type="test.pending", source="tests", data={})
        notification = Notification.objects.create(
            recipient=make_user(), type="welcome", title="Hi"
        )
        Delivery.objects.create(notification=notification, channel="email", status="failed")
    job_failure_record(
        task_name="jobs_test.stats", task_id=uuid.uuid4().hex, schema=tenant_a.schema, args=[],
        kwargs={}, exception=ValueError("x"), traceback="", attempts=1,
    )  # fmt: skip

    stats = json.loads(run("jobs_stats", "--json"))

    assert stats["outbox"][tenant_a.schema]["pending"] >= 1
    assert set(stats["outbox"]) >= {"public", tenant_a.schema}
    assert stats["job_failures"]["jobs_test.stats"] == {"open": 1, "total": 1}
    assert stats["deliveries"][tenant_a.schema]["failed"] >= 1
    text = run("jobs_stats")
    assert "Outbox events" in text and "jobs_test.stats" in text


@pytest.mark.django_db
def test_deliveries_retry_requeues_failed_deliveries_of_one_channel(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        notification = Notification.objects.create(
            recipient=make_user(), type="welcome", title="Hi"
        )
        email = Delivery.objects.create(
            notification=notification, channel="email", status="failed", attempts=5
        )
        sms = Delivery.objects.create(
            notification=notification, channel="sms", status="failed", attempts=5
        )

    output = run("deliveries_retry", "--tenant", tenant_a.tenant.slug, "--channel", "email")

    assert f"{tenant_a.tenant.slug}: 1 deliveries queued again" in output
    with tenant_context(tenant_a.tenant):
        email.refresh_from_db()
        sms.refresh_from_db()
    assert (email.status, email.attempts) == ("pending", 0)
    assert (sms.status, sms.attempts) == ("failed", 5)
