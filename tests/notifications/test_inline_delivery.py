"""A worker sends the e-mail of a notification it writes itself, without a `deliver` task:
`notify()` sends it before writing the delivery with the outcome; a batch's chunk is
mailed after its commit, over one connection. Whatever a worker cannot settle (a
retry, an open breaker) goes to `deliver`.

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

from apps.notifications import services
from apps.notifications.breaker import provider_breaker
from apps.notifications.models import Delivery, NotificationBatch
from apps.notifications.services import deliveries_send_now, notify, notify_many
from apps.notifications.sql import ATTEMPT_FIELDS, outcomes_write
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch) -> list[dict[str, Any]]:
    """The `deliver` tasks sent, instead of sending them."""
    from apps.notifications.tasks import deliver

    sent: list[dict[str, Any]] = []

    def record(args: Any = None, kwargs: Any = None, **options: Any) -> None:
        sent.append({"delivery_id": args[0], "countdown": options.get("countdown")})

    monkeypatch.setattr(deliver, "apply_async", record)
    return sent


@pytest.fixture
def in_worker(monkeypatch) -> None:
    monkeypatch.setattr(services, "_in_worker", lambda: True)


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


def test_in_a_worker_notify_sends_the_email_and_writes_the_delivery_sent(
    in_tenant_a, in_worker, enqueued, django_capture_on_commit_callbacks
) -> None:
    user = make_user(phone_number="+14155550100")

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        CaptureQueriesContext(connection) as queries,
    ):
        notification = notify(user=user, type="welcome", channels=["in_app", "email", "sms"])
    assert notification is not None
    # Sent in the transaction that wrote it: the row went in sent, once, and no
    # second transaction locked it or updated it.
    delivery = _email(notification)
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert delivery.provider_message_id == mail.outbox[0].extra_headers["Message-ID"]
    assert mail.outbox[0].to == [user.email]
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "FOR UPDATE" in sql]
    assert not [sql for sql in statements if sql.startswith('UPDATE "notifications_delivery"')]
    assert enqueued == []

    for callback in callbacks:
        callback()

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
        notification = notify(user=user, type="welcome", channels=["email"])
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
    assert services._in_worker() is False  # a test, like a web request, is no worker

    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(user=make_user(), type="welcome", channels=["in_app", "email"])

    assert notification is not None
    assert mail.outbox == []
    assert enqueued == [{"delivery_id": _email(notification).pk, "countdown": None}]


def test_an_inline_failure_is_left_to_the_retry_path(
    in_tenant_a, in_worker, enqueued, settings, django_capture_on_commit_callbacks
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"

    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(user=make_user(), type="welcome", channels=["email"])

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
        notification = notify(user=make_user(), type="welcome", channels=["email"])

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
        notification = notify(user=make_user(), type="welcome", channels=["email"])

    delivery = _email(notification)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 0, "")
    assert mail.outbox == []
    assert enqueued == [{"delivery_id": delivery.pk, "countdown": None}]


def test_a_chunk_is_mailed_over_one_connection_each_delivery_recorded(
    in_tenant_a, in_worker, enqueued, smtp_sessions, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    users = [make_user() for _ in range(7)]
    smtp_sessions.refuse = {users[2].email}
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")
    monkeypatch.setattr(services, "send_group", lambda: 3)  # several groups, one connection
    with (
        CaptureQueriesContext(connection) as queries,  # outermost: the callbacks run inside
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = notify_many(
            user_ids=[u.pk for u in users],
            type="announcement",
            title="Hi",
            body="All",
            channels=["email"],
            batch=batch,
        )

    assert result.created == 7
    assert len(set(smtp_sessions.peers)) == 1  # one connection for the chunk
    # Each group of 3 (3, 3, 1) records its outcomes in one statement.
    updates = [
        q
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "notifications_delivery"')
    ]
    assert len(updates) == 3
    deliveries = {
        d.notification.recipient_id: d
        for d in Delivery.objects.filter(notification__batch=batch).select_related("notification")
    }
    refused = deliveries.pop(users[2].pk)
    assert refused.status == "failed" and "refused" in refused.last_error
    assert {d.status for d in deliveries.values()} == {"sent"}
    assert len({d.provider_message_id for d in deliveries.values()}) == 6
    assert sorted(smtp_sessions.accepted) == sorted(u.email for u in users if u != users[2])
    assert enqueued == []  # nothing left for a task


def test_deliveries_taken_or_settled_elsewhere_are_not_sent_again(
    in_tenant_a, enqueued, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        first = notify(user=make_user(), type="welcome", channels=["email"])
        second = notify(user=make_user(), type="welcome", channels=["email"])
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
            notification = notify(user=make_user(), type="welcome", channels=["email"])
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


def test_a_groups_outcomes_are_written_exactly_in_one_statement(in_tenant_a) -> None:
    from datetime import timedelta

    from django.utils import timezone

    first = notify(user=make_user(), type="welcome", channels=["email", "sms"])
    second = notify(user=make_user(phone_number="+14155550101"), type="welcome", channels=["sms"])
    assert first is not None and second is not None
    sent, failed = first.deliveries.get(channel="email"), first.deliveries.get(channel="sms")
    waiting = second.deliveries.get(channel="sms")
    later = timezone.now() + timedelta(minutes=3)
    sent.status, sent.attempts, sent.sent_at = "sent", 1, timezone.now()
    sent.provider_message_id = "<abc@example>"
    failed.status, failed.attempts, failed.last_error = "failed", 5, "refusé: 'quoted' \\ text"
    waiting.attempts, waiting.next_attempt_at, waiting.last_error = 2, later, "timeout"

    with CaptureQueriesContext(connection) as queries:
        outcomes_write([sent, failed, waiting])

    assert len(queries.captured_queries) == 1
    for expected in (sent, failed, waiting):
        row = Delivery.objects.get(pk=expected.pk)
        for name in ATTEMPT_FIELDS:
            assert getattr(row, name) == getattr(expected, name), name
    assert Delivery.objects.get(pk=waiting.pk).sent_at is None
