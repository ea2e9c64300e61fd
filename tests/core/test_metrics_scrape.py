"""What /metrics reads when scraped (queue depth, outbox lag, breaker states) and the
counters other apps increment (notification deliveries): exact values, and a reading that
fails is left out, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.jobs.models import OutboxEvent
from apps.notifications.breaker import breaker_reset, provider_breaker
from apps.notifications.channels.registry import provider_for
from apps.notifications.delivery import delivery_send
from apps.notifications.notify import notification_send
from platform_site.celery import app
from tests.accounts.factories import make_user
from tests.core.metrics_samples import delta, has, scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def breakers_closed() -> Iterator[None]:
    # Breaker state lives in Redis, which no test transaction rolls back.
    def forget() -> None:
        for channel in ("email", "sms", "push"):
            breaker_reset(provider_for(channel).name)

    forget()
    yield
    forget()


def test_outbox_lag_is_the_age_of_the_oldest_pending_event(tenant_a, tenant_b) -> None:
    watcher = APIClient()
    before = scrape(watcher)
    with tenant_context(tenant_b.tenant):
        OutboxEvent.objects.create(
            event_type="test.metrics", source="tests", data={},
            occurred_at=timezone.now() - timedelta(days=3650),
        )  # fmt: skip
    with tenant_context(tenant_a.tenant):
        OutboxEvent.objects.create(event_type="test.metrics", source="tests", data={})
        OutboxEvent.objects.create(
            event_type="test.metrics", source="tests", data={}, dispatched_at=timezone.now()
        )
    after = scrape(watcher)
    assert delta(before, after, "outbox_pending_events") == 2
    # The oldest pending event anywhere is tenant B's, ten years old.
    assert 3650 * 86400 <= value(after, "outbox_lag_seconds") < 3651 * 86400


def test_queue_depth_counts_the_messages_waiting() -> None:
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue  # the queue /metrics reports on
    watcher = APIClient()
    try:
        assert value(scrape(watcher), "celery_queue_depth", queue=queue) == 0  # no such queue yet
        for _ in range(3):
            app.send_task("tests.never_consumed", queue=queue, headers={"_schema_name": "public"})
        assert value(scrape(watcher), "celery_queue_depth", queue=queue) == 3
    finally:
        app.conf.task_default_queue = previous
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


def test_an_unreachable_broker_leaves_the_queue_depth_out() -> None:
    previous = app.conf.broker_read_url
    app.conf.broker_read_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused
    try:
        samples = scrape(APIClient())
    finally:
        app.conf.broker_read_url = previous
    assert not has(samples, "celery_queue_depth")
    assert has(samples, "outbox_lag_seconds")  # the other readings still come


def test_breaker_states_per_channel(breakers_closed) -> None:
    watcher = APIClient()
    closed = scrape(watcher)
    assert [value(closed, "notification_breaker_state", channel=c) for c in ("email", "sms")] == [
        0,
        0,
    ]
    provider_breaker(provider_for("sms").name).open()
    opened = scrape(watcher)
    assert value(opened, "notification_breaker_state", channel="sms") == 2
    assert value(opened, "notification_breaker_state", channel="email") == 0
    provider_breaker(provider_for("sms").name).half_open()
    assert value(scrape(watcher), "notification_breaker_state", channel="sms") == 1


def test_delivery_outcomes_are_counted_per_channel_and_status(tenant_a, breakers_closed) -> None:
    watcher = APIClient()
    with tenant_context(tenant_a.tenant):
        user = make_user()
        sent = notification_send(user=user, type="announcement", title="Hi", channels=["email"])
        no_phone = notification_send(user=user, type="announcement", title="Hi", channels=["sms"])
        assert sent is not None and no_phone is not None
        email = sent.deliveries.get(channel="email")
        sms = no_phone.deliveries.filter(channel="sms").first()
        before = scrape(watcher)
        assert delivery_send(delivery_id=email.pk).status == "sent"
        assert delivery_send(delivery_id=email.pk).status == "sent"  # sent already: no call
        if sms is not None and sms.status == "pending":
            delivery_send(delivery_id=sms.pk)
        provider_breaker("email").open()
        waiting = notification_send(
            user=user, type="announcement", title="Later", channels=["email"]
        )
        assert waiting is not None
        assert (
            delivery_send(delivery_id=waiting.deliveries.get(channel="email").pk).status
            == "pending"
        )
        after = scrape(watcher)
    assert (
        delta(before, after, "notification_deliveries_total", channel="email", status="sent") == 1
    )
    assert (
        delta(before, after, "notification_deliveries_total", channel="email", status="pending")
        == 1
    )
    assert value(after, "notification_breaker_state", channel="email") == 2
