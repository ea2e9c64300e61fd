"""The batch fan-out in the worker (run eagerly): chunks, counts, and running twice."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth.hashers import make_password
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.notifications import batches, tasks
from apps.notifications.models import Delivery, Notification, NotificationBatch
from apps.notifications.send import batch_create
from apps.organizations.models import Membership
from apps.rbac.grants import Grants
from tests.accounts.factories import make_user
from tests.organizations.factories import org_create

EVERYWHERE = Grants({"notifications.send": None})


def bulk_users(count: int, prefix: str) -> list[User]:
    # make_user hashes and saves one by one; a precomputed hash and one INSERT is enough here.
    password = make_password("not-used-by-these-tests")
    return User.objects.bulk_create(
        User(email=f"{prefix}{n}@bulk.test", username=f"{prefix}{n}", password=password)
        for n in range(count)
    )


def batch_for(sender: User, **audience) -> NotificationBatch:
    return batch_create(
        sender=sender,
        grants=EVERYWHERE,
        type="announcement",
        title="Hello",
        body="To many.",
        channels=["in_app", "sms"],
        **audience,
    )


@pytest.mark.django_db
def test_five_thousand_users_in_chunks_with_correct_counts(
    tenant_a, eager_tasks, django_capture_on_commit_callbacks, api_a, owner_token
) -> None:
    with tenant_context(tenant_a.tenant):
        root = org_create("Everyone")
        child = org_create("Half", root)
        users = bulk_users(5000, "u")
        Membership.objects.bulk_create(
            Membership(user=user, organization=root if n % 2 else child)
            for n, user in enumerate(users)
        )
    started = time.monotonic()

    with override_settings(NOTIFICATION_BATCH_CHUNK=500):
        with django_capture_on_commit_callbacks(execute=True):
            response = api_a.call(
                "post",
                "/api/v1/notifications/send",
                {
                    "type": "announcement",
                    "title": "Hello",
                    "body": "To many.",
                    "channels": ["in_app", "sms"],
                    "organizations": [root.pk],
                    "users": [users[0].pk, users[1].pk],  # also in the subtree: counted once
                },
                token=owner_token,
            )

    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.content
    batch_id = response.json()["data"]["batch_id"]
    progress = api_a.call(
        "get", f"/api/v1/notifications/batches/{batch_id}", token=owner_token
    ).json()["data"]
    assert progress["status"] == "done"
    assert progress["total_recipients"] == 5000
    assert progress["notifications_created"] == 5000
    assert progress["deliveries"]["in_app"]["sent"] == 5000
    assert progress["deliveries"]["sms"]["skipped"] == 5000
    assert progress["delivery_totals"]["total"] == 10_000
    assert progress["chunks"] == {"total": 10, "done": 10}
    assert progress["failed_recipients"] == 0
    with tenant_context(tenant_a.tenant):
        batch = NotificationBatch.objects.get(pk=batch_id)
        assert len(batch.audience["progress"]["bounds"]) == 10
        assert batch.audience["progress"]["chunks_done"] == list(range(10))
        assert (
            Notification.objects.filter(batch=batch).values("recipient").distinct().count() == 5000
        )
    assert elapsed < 30, f"{elapsed:.1f}s"


@pytest.fixture
def small_batch(tenant_a):
    """A batch of 7 users planned in chunks of 3 (the fan-out ran, no chunk yet)."""
    with tenant_context(tenant_a.tenant):
        sender = make_user(email="sender@alpha.test", username="sender")
        users = bulk_users(7, "s")
        batch = batch_for(sender, users=[u.pk for u in users])
        with override_settings(NOTIFICATION_BATCH_CHUNK=3):
            pending = batches.batch_fan_out(batch_id=batch.pk)
        batch.refresh_from_db()
    assert pending == [0, 1, 2]
    return batch


def _counts(batch: NotificationBatch) -> tuple[int, int]:
    return (
        Notification.objects.filter(batch=batch).count(),
        Delivery.objects.filter(notification__batch=batch).count(),
    )


@pytest.mark.django_db
def test_a_chunk_run_twice_notifies_once(tenant_a, small_batch) -> None:
    with tenant_context(tenant_a.tenant):
        first = batches.batch_chunk_send(batch_id=small_batch.pk, index=0)
        again = batches.batch_chunk_send(batch_id=small_batch.pk, index=0)

        assert (first, again) == (3, 0)
        assert _counts(small_batch) == (3, 6)
        small_batch.refresh_from_db()
        assert small_batch.status == NotificationBatch.Status.RUNNING


@pytest.mark.django_db
def test_a_chunk_that_died_before_being_counted_is_safe_to_run_again(tenant_a, small_batch) -> None:
    with tenant_context(tenant_a.tenant):
        batches.batch_chunk_send(batch_id=small_batch.pk, index=1)
        # The worker was killed after notifying, before counting: the message comes again.
        batch = NotificationBatch.objects.get(pk=small_batch.pk)
        batch.audience["progress"]["chunks_done"] = []
        batch.save(update_fields=["audience"])
        Notification.objects.filter(batch=batch).order_by("-id")[0].delete()  # half done

        rerun = batches.batch_chunk_send(batch_id=small_batch.pk, index=1)

        assert rerun == 1  # only the one that had not been notified
        assert _counts(small_batch) == (3, 6)
        recipients = Notification.objects.filter(batch=batch).values_list("recipient", flat=True)
        assert len(set(recipients)) == 3


@pytest.mark.django_db
def test_the_batch_is_done_when_every_chunk_is_counted(tenant_a, small_batch) -> None:
    with tenant_context(tenant_a.tenant):
        for index in (2, 0, 1, 0):
            batches.batch_chunk_send(batch_id=small_batch.pk, index=index)
        small_batch.refresh_from_db()

        assert small_batch.status == NotificationBatch.Status.DONE
        assert small_batch.finished_at is not None
        assert small_batch.total_recipients == 7
        assert _counts(small_batch) == (7, 14)


@pytest.mark.django_db
def test_a_fan_out_run_again_plans_nothing_new_and_resends_only_what_is_left(
    tenant_a, small_batch
) -> None:
    with tenant_context(tenant_a.tenant):
        batches.batch_chunk_send(batch_id=small_batch.pk, index=0)

        with override_settings(NOTIFICATION_BATCH_CHUNK=1):  # a changed setting changes nothing
            pending = batches.batch_fan_out(batch_id=small_batch.pk)

        small_batch.refresh_from_db()
        assert pending == [1, 2]
        assert len(small_batch.audience["progress"]["bounds"]) == 3
        assert small_batch.total_recipients == 7


@pytest.mark.django_db
def test_tasks_delivered_twice_change_nothing(
    tenant_a, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a.tenant):
        sender = make_user(email="sender@alpha.test", username="sender")
        users = bulk_users(5, "t")
        with override_settings(NOTIFICATION_BATCH_CHUNK=2):
            with django_capture_on_commit_callbacks(execute=True):
                batch = batch_for(sender, users=[u.pk for u in users])
            with django_capture_on_commit_callbacks(execute=True):
                tasks.batch_fan_out_task.delay(str(batch.pk))
                tasks.batch_chunk_task.delay(str(batch.pk), 1)
        batch.refresh_from_db()

        assert batch.status == NotificationBatch.Status.DONE
        assert _counts(batch) == (5, 10)


@pytest.mark.django_db
def test_users_who_left_before_their_chunk_are_skipped(tenant_a, small_batch) -> None:
    with tenant_context(tenant_a.tenant):
        first, last = small_batch.audience["progress"]["bounds"][1]
        User.objects.filter(pk=first).update(is_active=False)

        batches.batch_chunk_send(batch_id=small_batch.pk, index=1)

        assert not Notification.objects.filter(batch=small_batch, recipient_id=first).exists()
        assert Notification.objects.filter(batch=small_batch, recipient_id=last).exists()


@pytest.mark.django_db
def test_an_empty_audience_at_fan_out_time_is_done_at_once(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        sender = make_user(email="sender@alpha.test", username="sender")
        user = make_user(email="leaver@alpha.test", username="leaver")
        batch = batch_for(sender, users=[user.pk])
        User.objects.filter(pk=user.pk).update(is_active=False)

        assert batches.batch_fan_out(batch_id=batch.pk) == []
        batch.refresh_from_db()
        assert batch.status == NotificationBatch.Status.DONE and batch.total_recipients == 0


@pytest.mark.django_db
def test_an_unknown_batch_is_ignored(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        assert batches.batch_fan_out(batch_id=uuid.uuid4()) == []
        assert batches.batch_chunk_send(batch_id=uuid.uuid4(), index=0) == 0


@pytest.mark.django_db
def test_one_recipient_failing_does_not_hold_back_the_chunk(
    tenant_a, small_batch, monkeypatch
) -> None:
    first, _last = small_batch.audience["progress"]["bounds"][0]
    real_send = batches.notification_send

    def notify_many_broken(**kwargs):
        raise ValueError("a template that cannot render for someone")

    def notify_failing_for_first(*, user, **kwargs):
        if user.pk == first:
            raise ValueError("cannot render for this one")
        return real_send(user=user, **kwargs)

    monkeypatch.setattr(batches, "notifications_send", notify_many_broken)
    monkeypatch.setattr(batches, "notification_send", notify_failing_for_first)
    with tenant_context(tenant_a.tenant):
        written = batches.batch_chunk_send(batch_id=small_batch.pk, index=0)
        small_batch.refresh_from_db()

        assert written == 2
        assert _counts(small_batch) == (2, 4)
        assert small_batch.audience["progress"]["failed"] == 1
        assert small_batch.audience["progress"]["chunks_done"] == [0]


# ------------------------------------------------------------------ a chunk and its e-mail


@pytest.fixture
def worker_sends(monkeypatch) -> list[int]:
    """As in a worker: e-mail is sent by the chunk's task; the `deliver` tasks it hands
    work to are recorded (their ids), not sent."""
    from apps.notifications import inline_delivery
    from apps.notifications.delivery_queue import deliver

    handed: list[int] = []
    monkeypatch.setattr(inline_delivery, "_in_worker", lambda: True)
    monkeypatch.setattr(
        deliver, "apply_async", lambda args=None, kwargs=None, **options: handed.append(args[0])
    )
    return handed


def _email_batch(count: int, prefix: str, channels: list[str]) -> tuple[NotificationBatch, list]:
    sender = make_user(email=f"{prefix}-sender@alpha.test", username=f"{prefix}-sender")
    users = bulk_users(count, prefix)
    User.objects.filter(pk__in=[u.pk for u in users]).update(phone_number="+14155550123")
    batch = batch_create(
        sender=sender,
        grants=EVERYWHERE,
        type="announcement",
        title="Hello",
        body="To many.",
        channels=channels,
        users=[u.pk for u in users],
    )
    assert batches.batch_fan_out(batch_id=batch.pk) == [0]
    return batch, users


@pytest.mark.django_db
def test_a_chunk_run_again_after_its_worker_died_mails_what_was_left_and_only_then_is_done(
    tenant_a, worker_sends, django_capture_on_commit_callbacks
) -> None:
    from django.core import mail

    with tenant_context(tenant_a.tenant):
        batch, users = _email_batch(3, "k", ["email"])
        # The first run wrote the chunk and died mailing it: its after-commit work never
        # ran, except the first message, sent and recorded before the worker was killed.
        with django_capture_on_commit_callbacks(execute=False):
            batches.batch_chunk_send(batch_id=batch.pk, index=0)
        rows = list(Delivery.objects.filter(notification__batch=batch).order_by("pk"))
        Delivery.objects.filter(pk=rows[0].pk).update(status="sent", attempts=1)
        batch.refresh_from_db()
        assert batch.status == NotificationBatch.Status.RUNNING  # two e-mails are pending
        assert batch.audience["progress"]["chunks_done"] == []

        # Acks late: the message comes again.
        with django_capture_on_commit_callbacks(execute=True):
            again = batches.batch_chunk_send(batch_id=batch.pk, index=0)

        assert again == 0  # nobody notified twice
        assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users[1:])
        assert set(
            Delivery.objects.filter(notification__batch=batch).values_list("status", flat=True)
        ) == {"sent"}
        batch.refresh_from_db()
        assert batch.status == NotificationBatch.Status.DONE
        assert batch.audience["progress"]["chunks_done"] == [0]
        assert worker_sends == []


@pytest.mark.django_db
def test_a_chunk_is_done_only_once_the_deliveries_left_to_their_tasks_are_settled(
    tenant_a, worker_sends, django_capture_on_commit_callbacks
) -> None:
    from django.core import mail

    from apps.notifications.delivery_queue import deliver

    with tenant_context(tenant_a.tenant):
        batch, _users = _email_batch(3, "q", ["email", "sms"])
        with django_capture_on_commit_callbacks(execute=True):
            batches.batch_chunk_send(batch_id=batch.pk, index=0)
        batch.refresh_from_db()
        # The e-mail went out with the chunk; each SMS waits for its own task.
        assert len(mail.outbox) == 3
        assert sorted(worker_sends) == sorted(
            Delivery.objects.filter(notification__batch=batch, channel="sms").values_list(
                "pk", flat=True
            )
        )
        assert batch.status == NotificationBatch.Status.RUNNING
        assert batch.audience["progress"]["chunks_written"] == [0]
        assert batch.audience["progress"]["chunks_done"] == []

        for delivery_id in worker_sends[:-1]:
            assert deliver(delivery_id) == "sent"
        batch.refresh_from_db()
        assert batch.status == NotificationBatch.Status.RUNNING

        assert deliver(worker_sends[-1]) == "sent"
        batch.refresh_from_db()
        assert batch.status == NotificationBatch.Status.DONE
        assert batch.finished_at is not None
        assert batch.audience["progress"]["chunks_done"] == [0]
