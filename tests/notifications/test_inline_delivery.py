"""A worker sends the e-mail of a notification it writes itself, without a `deliver` task,
right after the commit, over one connection: `notification_send()` writes its delivery claimed, a
batch's chunk claims each delivery before its provider call, and every outcome is
recorded before the next call, outside any transaction. Whatever a worker cannot
settle (a retry, an open breaker, a claim held elsewhere) goes to `deliver`.

`_in_worker()` is what a Celery worker answers; here it is patched, and the
on-commit callbacks are run by hand (the test's transaction is never committed).
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.notifications import inline_delivery
from apps.notifications.breaker import provider_breaker
from apps.notifications.delivery import claim_lease, deliveries_send_now
from apps.notifications.models import Delivery, NotificationBatch
from apps.notifications.notify import notification_send, notifications_send
from apps.notifications.sql import ATTEMPT_FIELDS, delivery_step
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch) -> list[dict[str, Any]]:
    """The `deliver` tasks sent, instead of sending them."""
    from apps.notifications.delivery_queue import deliver

    sent: list[dict[str, Any]] = []

    def record(args: Any = None, kwargs: Any = None, **options: Any) -> None:
        sent.append({"delivery_id": args[0], "countdown": options.get("countdown")})

    monkeypatch.setattr(deliver, "apply_async", record)
    return sent


@pytest.fixture
def in_worker(monkeypatch) -> None:
    monkeypatch.setattr(inline_delivery, "_in_worker", lambda: True)


class FlakyBackend(LocmemBackend):
    """The SMTP server drops the connection at every message."""

    def send_messages(self, messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@dataclass
class Sessions:
    """A real SMTP server that notes which connection each message came over."""

    host: str = "127.0.0.1"
    port: int = 0
    peers: list[Any] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)


@pytest.fixture
def smtp_sessions(settings) -> Iterator[Sessions]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Sessions(port=port)

    class Handler:
        async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str, *a):
            if address in server.refuse:
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
            server.peers.append(session.peer)
            server.accepted.extend(envelope.rcpt_tos)
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=server.host, port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, port
    try:
        yield server
    finally:
        controller.stop()


def _email(notification: Any) -> Delivery:
    return notification.deliveries.get(channel="email")


def test_in_a_worker_notify_writes_the_email_claimed_and_sends_it_after_the_commit(
    in_tenant_a, in_worker, enqueued, django_capture_on_commit_callbacks
) -> None:
    user = make_user(phone_number="+14155550100")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notification = notification_send(
            user=user, type="welcome", channels=["in_app", "email", "sms"]
        )
    assert notification is not None
    # Nothing goes out inside the transaction: the row is written claimed, pending.
    delivery = _email(notification)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.claimed_at is not None
    assert mail.outbox == [] and enqueued == []

    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()

    # Sent once committed, then recorded by one statement (no claim needed first, no lock).
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.claimed_at) == ("sent", 1, None)
    assert delivery.provider_message_id == mail.outbox[0].extra_headers["Message-ID"]
    assert mail.outbox[0].to == [user.email]
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1 and "FOR UPDATE" not in statements[0]
    # SMS is not sent inline: its task, and only its, once committed.
    assert enqueued == [
        {"delivery_id": notification.deliveries.get(channel="sms").pk, "countdown": None}
    ]
    assert len(mail.outbox) == 1


def test_the_inline_send_happens_once_a_second_run_finds_it_sent(
    in_tenant_a, in_worker, enqueued, django_capture_on_commit_callbacks
) -> None:
    user = make_user()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notification = notification_send(user=user, type="welcome", channels=["email"])
    assert notification is not None

    for _ in range(2):  # as if the callback, or a `deliver` copy, ran again
        for callback in callbacks:
            callback()

    assert len(mail.outbox) == 1
    assert _email(notification).attempts == 1
    assert enqueued == []


def test_outside_a_worker_every_delivery_is_a_task(
    in_tenant_a, enqueued, django_capture_on_commit_callbacks
) -> None:
    assert inline_delivery._in_worker() is False  # a test, like a web request, is no worker

    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_send(
            user=make_user(), type="welcome", channels=["in_app", "email"]
        )

    assert notification is not None
    assert mail.outbox == []
    assert enqueued == [{"delivery_id": _email(notification).pk, "countdown": None}]


def test_an_inline_failure_is_left_to_the_retry_path(
    in_tenant_a, in_worker, enqueued, settings, django_capture_on_commit_callbacks
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"

    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_send(user=make_user(), type="welcome", channels=["email"])

    delivery = _email(notification)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "SMTPServerDisconnected" in delivery.last_error
    assert delivery.next_attempt_at is not None
    [task] = enqueued
    assert task["delivery_id"] == delivery.pk and task["countdown"] > 0


def test_an_open_breaker_leaves_the_delivery_waiting_for_its_task(
    in_tenant_a, in_worker, enqueued, django_capture_on_commit_callbacks
) -> None:
    provider_breaker("email").open()

    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_send(user=make_user(), type="welcome", channels=["email"])

    delivery = _email(notification)
    assert (delivery.status, delivery.attempts) == ("pending", 0)  # not an attempt
    assert mail.outbox == []
    [task] = enqueued
    assert task["delivery_id"] == delivery.pk and task["countdown"] > 0


def test_an_error_while_sending_inline_hands_the_deliveries_to_their_tasks(
    in_tenant_a, in_worker, enqueued, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from apps.notifications.channels.email import DjangoMailProvider

    def broken(self: Any) -> Any:
        raise RuntimeError("the mail backend could not be set up")

    monkeypatch.setattr(DjangoMailProvider, "session", broken)

    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_send(user=make_user(), type="welcome", channels=["email"])

    delivery = _email(notification)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 0, "")
    assert delivery.claimed_at is None  # given back: its task need not wait for the claim
    assert mail.outbox == []
    assert enqueued == [{"delivery_id": delivery.pk, "countdown": None}]


def test_a_chunk_is_mailed_over_one_connection_each_delivery_recorded(
    in_tenant_a, in_worker, enqueued, smtp_sessions, django_capture_on_commit_callbacks
) -> None:
    users = [make_user() for _ in range(7)]
    smtp_sessions.refuse = {users[2].email}
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")
    with django_capture_on_commit_callbacks(execute=True):
        result = notifications_send(
            user_ids=[u.pk for u in users],
            type="announcement",
            title="Hi",
            body="All",
            channels=["email"],
            batch=batch,
        )

    assert result.created == 7
    assert len(set(smtp_sessions.peers)) == 1  # one connection for the chunk
    deliveries = {
        d.notification.recipient_id: d
        for d in Delivery.objects.filter(notification__batch=batch).select_related("notification")
    }
    refused = deliveries.pop(users[2].pk)
    assert refused.status == "failed" and "refused" in refused.last_error
    assert {d.status for d in deliveries.values()} == {"sent"}
    assert len({d.provider_message_id for d in deliveries.values()}) == 6
    assert sorted(smtp_sessions.accepted) == sorted(u.email for u in users if u != users[2])
    assert {d.claimed_at for d in [refused, *deliveries.values()]} == {None}
    assert enqueued == []  # nothing left for a task


class WatchingBackend(LocmemBackend):
    """Looks at the database at the moment of each provider call (`watch` does)."""

    watch: Any = None

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            WatchingBackend.watch(message.to[0])
        return super().send_messages(messages)


def test_each_send_is_claimed_before_its_provider_call_and_recorded_before_the_next(
    in_tenant_a, in_worker, enqueued, settings, django_capture_on_commit_callbacks
) -> None:
    users = [make_user() for _ in range(6)]
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")
    settings.EMAIL_BACKEND = f"{__name__}.WatchingBackend"
    outside = len(connection.atomic_blocks)  # the test's own transaction
    seen: list[tuple[str, str, list[str], int]] = []

    def watch(address: str) -> None:
        rows = Delivery.objects.filter(notification__batch=batch).order_by("pk")
        claimed = [d.notification.recipient.email for d in rows if d.claimed_at is not None]
        sent = [d.notification.recipient.email for d in rows if d.status == "sent"]
        seen.append((address, ",".join(claimed), sent, len(connection.atomic_blocks)))

    WatchingBackend.watch = watch
    with django_capture_on_commit_callbacks(execute=True):
        notifications_send(
            user_ids=[u.pk for u in users],
            type="announcement",
            title="Hi",
            body="All",
            channels=["email"],
            batch=batch,
        )

    emails = [u.email for u in users]
    assert [address for address, *_ in seen] == emails
    for n, (address, claimed, sent, depth) in enumerate(seen):
        assert claimed == address  # this one, and only this one, is claimed during its call
        assert sent == emails[:n]  # every earlier one is recorded before this call
        assert depth == outside  # no transaction (nor row lock) of ours around the call
    assert Delivery.objects.filter(notification__batch=batch, status="sent").count() == 6


def test_a_delivery_claimed_elsewhere_waits_for_the_claim_and_an_expired_claim_is_taken_over(
    in_tenant_a, enqueued, django_capture_on_commit_callbacks
) -> None:
    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=False):
        held = notification_send(user=make_user(), type="welcome", channels=["email"])
        dead = notification_send(user=make_user(), type="welcome", channels=["email"])
    assert held is not None and dead is not None
    now = timezone.now()
    # Another worker is in its provider call; a third one died in its call long ago.
    Delivery.objects.filter(pk=_email(held).pk).update(claimed_at=now)
    Delivery.objects.filter(pk=_email(dead).pk).update(claimed_at=now - 2 * claim_lease())

    outcomes = deliveries_send_now(deliveries=[_email(held), _email(dead)])

    waiting = outcomes[_email(held).pk]
    assert waiting.status == "busy" and waiting.retry_in is not None
    assert claim_lease().total_seconds() - 5 < waiting.retry_in <= claim_lease().total_seconds() + 1
    assert outcomes[_email(dead).pk].status == "sent"
    assert [m.to for m in mail.outbox] == [[dead.recipient.email]]
    assert (_email(held).status, _email(held).attempts) == ("pending", 0)


def test_deliveries_taken_or_settled_elsewhere_are_not_sent_again(
    in_tenant_a, enqueued, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        first = notification_send(user=make_user(), type="welcome", channels=["email"])
        second = notification_send(user=make_user(), type="welcome", channels=["email"])
    assert first is not None and second is not None
    done, pending = _email(first), _email(second)
    Delivery.objects.filter(pk=done.pk).update(status="sent")

    outcomes = deliveries_send_now(deliveries=[done, pending])

    assert outcomes[done.pk].status == "sent" and outcomes[pending.pk].status == "sent"
    assert [m.to for m in mail.outbox] == [[second.recipient.email]]


def test_the_next_inline_send_reuses_the_connection_and_replaces_one_the_server_dropped(
    in_tenant_a, in_worker, enqueued, smtp_sessions, django_capture_on_commit_callbacks
) -> None:
    from apps.notifications.channels import email

    def welcome() -> Delivery:
        with django_capture_on_commit_callbacks(execute=True):
            notification = notification_send(user=make_user(), type="welcome", channels=["email"])
        return _email(notification)

    first, second = welcome(), welcome()
    assert smtp_sessions.peers[0] == smtp_sessions.peers[1]  # kept between the two
    # The server closes the idle connection; the next message notices before sending.
    email._kept.connection.connection.sock.shutdown(socket.SHUT_RDWR)
    third = welcome()

    assert [d.status for d in (first, second, third)] == ["sent"] * 3
    assert third.attempts == 1
    assert len(smtp_sessions.peers) == 3 and smtp_sessions.peers[2] != smtp_sessions.peers[0]
    assert enqueued == []


def test_a_step_records_one_outcome_and_claims_the_next_in_one_statement(in_tenant_a) -> None:
    from datetime import timedelta

    from django.utils import timezone

    first = notification_send(
        user=make_user(phone_number="+14155550100"), type="welcome", channels=["email", "sms"]
    )
    second = notification_send(
        user=make_user(phone_number="+14155550101"), type="welcome", channels=["sms"]
    )
    assert first is not None and second is not None
    sent, failed = first.deliveries.get(channel="email"), first.deliveries.get(channel="sms")
    waiting = second.deliveries.get(channel="sms")
    assert {sent.status, failed.status, waiting.status} == {"pending"}
    now = timezone.now()
    Delivery.objects.filter(pk=waiting.pk).update(attempts=2, last_error="timeout")
    window = {"claimable_before": now - claim_lease(), "due_before": now}

    with CaptureQueriesContext(connection) as queries:
        step = delivery_step(record=None, claim=sent, now=now, **window)
    assert len(queries.captured_queries) == 1
    assert (step.claimed, sent.claimed_at) == (True, now)
    # Claimed already: nobody else gets it.
    assert not delivery_step(
        record=None, claim=Delivery.objects.get(pk=sent.pk), now=now, **window
    ).claimed

    sent.status, sent.attempts, sent.sent_at = "sent", 1, timezone.now()
    sent.provider_message_id = "<abc@example>"
    later = now + timedelta(minutes=3)
    with CaptureQueriesContext(connection) as queries:
        step = delivery_step(record=sent, claim=waiting, now=now, **window)
    assert len(queries.captured_queries) == 1
    assert (step.recorded, step.claimed) == (True, True)
    assert waiting.attempts == 2 and waiting.last_error == "timeout"  # read from the row
    row = Delivery.objects.get(pk=sent.pk)
    for name in ATTEMPT_FIELDS:
        assert getattr(row, name) == getattr(sent, name), name
    assert row.claimed_at is None and sent.claimed_at is None

    # An outcome whose claim was taken over by another worker is not written.
    waiting.attempts, waiting.next_attempt_at, waiting.last_error = (
        3,
        later,
        "refusé: 'quoted' \\ text",
    )
    Delivery.objects.filter(pk=waiting.pk).update(claimed_at=now + timedelta(seconds=1))
    step = delivery_step(record=waiting, claim=failed, now=now, **window)
    assert (step.recorded, step.claimed) == (False, True)
    assert Delivery.objects.get(pk=waiting.pk).attempts == 2
    # A delivery not due yet, or settled, is not claimed; the step says why.
    failed.status, failed.attempts, failed.last_error = "failed", 5, "refusé: 'quoted' \\ text"
    Delivery.objects.filter(pk=waiting.pk).update(claimed_at=None, next_attempt_at=later)
    step = delivery_step(record=failed, claim=waiting, now=now, **window)
    assert (step.recorded, step.claimed, step.next_attempt_at) == (True, False, later)
    assert Delivery.objects.get(pk=failed.pk).last_error == failed.last_error
    step = delivery_step(record=None, claim=failed, now=now, **window)
    assert (step.claimed, step.status) == (False, "failed")
