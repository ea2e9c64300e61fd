"""The transactional outbox: dispatched after commit only, never on rollback, re-sent by the relay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.jobs.events import any_event, event_record, event_signal, outbox_relay
from apps.jobs.models import OutboxEvent


@pytest.fixture
def received():
    """Connects a receiver to a fresh event type; yields (type, list of envelopes received)."""
    event_type = f"test.{uuid.uuid4().hex[:8]}"
    got: list[dict] = []

    def receiver(sender, event, **kwargs):
        got.append(event)

    event_signal(event_type).connect(receiver, weak=False)
    yield event_type, got
    event_signal(event_type).disconnect(receiver)


@pytest.mark.django_db
def test_event_is_dispatched_only_after_commit(
    received, django_capture_on_commit_callbacks
) -> None:
    event_type, got = received
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            event = event_record(type=event_type, source="tests", data={"n": 1})
            assert got == []  # inside the transaction: recorded, not sent
        assert got == []  # committed (to the test's savepoint): still only scheduled
    assert len(callbacks) == 1
    assert len(got) == 1
    envelope = got[0]
    assert envelope["event_id"] == str(event.event_id)
    assert envelope["event_type"] == event_type
    assert envelope["source"] == "tests"
    assert envelope["version"] == "1.0"
    assert envelope["data"] == {"n": 1}
    assert envelope["metadata"]["tenant"] == "public"
    assert set(envelope) == {
        "event_id",
        "event_type",
        "timestamp",
        "version",
        "source",
        "data",
        "metadata",
    }
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.attempts == 1


@pytest.mark.django_db
def test_rolled_back_event_is_neither_sent_nor_stored(
    received, django_capture_on_commit_callbacks
) -> None:
    event_type, got = received
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            event_record(type=event_type, source="tests", data={})
            raise RuntimeError("the change failed")
    assert callbacks == []
    assert got == []
    assert not OutboxEvent.objects.filter(event_type=event_type).exists()


@pytest.mark.django_db
def test_event_carries_its_tenant_and_lives_in_its_schema(
    received, tenant_a, tenant_b, django_capture_on_commit_callbacks
) -> None:
    event_type, got = received
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a.tenant):
        event_record(type=event_type, source="tests", data={})
    assert got[0]["metadata"]["tenant"] == tenant_a.schema
    with tenant_context(tenant_a.tenant):
        assert OutboxEvent.objects.filter(event_type=event_type).count() == 1
    with tenant_context(tenant_b.tenant):
        assert not OutboxEvent.objects.filter(event_type=event_type).exists()


@pytest.mark.django_db
def test_any_event_signal_sees_every_event(received, django_capture_on_commit_callbacks) -> None:
    event_type, _ = received
    seen: list[str] = []

    def audit(sender, event, **kwargs):
        seen.append(event["event_type"])

    any_event.connect(audit, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event_record(type=event_type, source="tests", data={})
    finally:
        any_event.disconnect(audit)
    assert seen == [event_type]


@pytest.mark.django_db
def test_failed_receiver_leaves_event_pending_and_relay_sends_it_once(
    received, django_capture_on_commit_callbacks
) -> None:
    event_type, got = received
    broker_up = False

    def enqueue(sender, event, **kwargs):
        if not broker_up:
            raise ConnectionError("broker unreachable")
        got.append(event)

    event_signal(event_type).connect(enqueue, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = event_record(type=event_type, source="tests", data={"x": 1})
        event.refresh_from_db()
        assert event.dispatched_at is None
        assert event.attempts == 1
        assert "broker unreachable" in event.last_error

        # Too young for the relay: an on-commit dispatch may still be under way.
        assert outbox_relay() == 0

        OutboxEvent.objects.filter(pk=event.pk).update(
            occurred_at=timezone.now() - timedelta(minutes=5)
        )
        broker_up = True
        got.clear()
        assert outbox_relay() == 1
        assert outbox_relay() == 0  # dispatched once, not again
    finally:
        event_signal(event_type).disconnect(enqueue)
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.last_error == ""
    # Both receivers (the fixture's and `enqueue`) got it exactly once from the relay.
    assert [e["event_id"] for e in got] == [str(event.event_id)] * 2
