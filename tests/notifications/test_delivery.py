"""notification_send(): channels from preferences, skipped channels, idempotency; delivery_send's bookkeeping."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps.notifications.delivery import delivery_send
from apps.notifications.delivery_queue import deliveries_requeue_stale, deliveries_retry
from apps.notifications.models import (
    Channel,
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
    Preference,
)
from apps.notifications.notify import (
    SKIP_NO_DEVICE,
    SKIP_NO_PHONE,
    SKIP_PREFERENCE,
    notification_send,
    notifications_send,
)
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db


def _statuses(notification: Notification) -> dict[str, str]:
    return dict(notification.deliveries.values_list("channel", "status"))


def _reachable_user(**fields):
    user = make_user(phone_number="+14155550100", **fields)
    DeviceSubscription.objects.create(
        user=user, endpoint="https://push.example.com/abc", keys={"p256dh": "x", "auth": "y"}
    )
    return user


def test_notify_writes_the_inbox_row_and_one_delivery_per_channel(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    user = _reachable_user(full_name="Ada Lovelace")

    with django_capture_on_commit_callbacks() as callbacks:
        notification = notification_send(user=user, type="welcome")

    assert notification is not None
    assert notification.title == f"Welcome to {in_tenant_a.tenant.name}"
    assert "Hello Ada Lovelace" in notification.body
    assert _statuses(notification) == {
        "in_app": "sent",
        "email": "pending",
        "sms": "pending",
        "push": "pending",
    }
    inbox = notification.deliveries.get(channel=Channel.IN_APP)
    assert inbox.sent_at is not None and inbox.provider_message_id == str(notification.pk)
    # The worker gets the three pending deliveries once the transaction commits.
    assert len(callbacks) == 1


def test_text_templates_are_not_html_escaped(in_tenant_a) -> None:
    user = make_user(full_name="Tom & Jerry <tj>")

    notification = notification_send(user=user, type="welcome", channels=["in_app"])

    assert notification is not None
    assert "Hello Tom & Jerry <tj>" in notification.body


def test_given_title_and_body_are_kept_and_the_default_templates_serve_unknown_types(
    in_tenant_a,
) -> None:
    user = make_user()

    given = notification_send(
        user=user, type="announcement", title="Office closed", body="On Friday."
    )
    rendered = notification_send(
        user=user, type="announcement", data={"message": "From the default body"}
    )

    assert given is not None and (given.title, given.body) == ("Office closed", "On Friday.")
    assert rendered is not None
    assert rendered.title.startswith("You have a new notification")
    assert rendered.body == "From the default body"


def test_a_channel_turned_off_in_the_preferences_is_skipped(in_tenant_a) -> None:
    user = _reachable_user()
    Preference.objects.create(user=user, type="announcement", channel="email", enabled=False)
    Preference.objects.create(user=user, type="announcement", channel="sms", enabled=True)
    Preference.objects.create(user=user, type="welcome", channel="push", enabled=False)

    notification = notification_send(user=user, type="announcement", title="t", body="b")

    assert notification is not None
    assert _statuses(notification) == {
        "in_app": "sent",
        "email": "skipped",
        "sms": "pending",
        "push": "pending",  # turned off for another type only
    }
    assert notification.deliveries.get(channel="email").last_error == SKIP_PREFERENCE


def test_only_the_requested_channels_get_a_delivery(in_tenant_a) -> None:
    user = _reachable_user()

    notification = notification_send(
        user=user, type="announcement", title="t", channels=["email", "in_app"]
    )

    assert notification is not None
    assert _statuses(notification) == {"in_app": "sent", "email": "pending"}


def test_security_notices_ignore_the_preferences(in_tenant_a) -> None:
    user = _reachable_user()
    for channel in Channel.values:  # stored against the API's rules, on purpose
        Preference.objects.create(
            user=user, type="security.password_changed", channel=channel, enabled=False
        )

    notification = notification_send(
        user=user, type="security.password_changed", data={"how": "change"}, is_security=False
    )

    assert notification is not None
    assert notification.is_security  # the registry says so, whatever the caller passed
    assert set(_statuses(notification).values()) == {"sent", "pending"}
    assert not notification.deliveries.filter(status="skipped").exists()


def test_channels_without_an_address_are_skipped_with_the_reason(in_tenant_a) -> None:
    user = make_user(phone_number="")

    notification = notification_send(user=user, type="announcement", title="t")

    assert notification is not None
    skipped = dict(
        notification.deliveries.filter(status="skipped").values_list("channel", "last_error")
    )
    assert skipped == {"sms": SKIP_NO_PHONE, "push": SKIP_NO_DEVICE}


def test_the_same_source_event_notifies_once(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    user = _reachable_user()
    event_id = uuid.uuid4()
    first = notification_send(user=user, type="welcome", source_event_id=event_id)

    with django_capture_on_commit_callbacks() as callbacks:
        again = notification_send(user=user, type="welcome", source_event_id=str(event_id))

    assert first is not None and again is None
    assert Notification.objects.filter(recipient=user).count() == 1
    assert Delivery.objects.filter(notification__recipient=user).count() == 4
    assert callbacks == []
    # Another type for the same event is another notification.
    assert (
        notification_send(user=user, type="announcement", title="t", source_event_id=event_id)
        is not None
    )


def test_a_concurrent_duplicate_is_stopped_by_the_unique_constraint(in_tenant_a) -> None:
    # notification_send() asks nothing first: another worker's row (or an earlier run's) is found by
    # the insert itself (ON CONFLICT DO NOTHING on the index), and the caller's
    # transaction goes on.
    user = make_user()
    event_id = uuid.uuid4()
    assert notification_send(user=user, type="welcome", source_event_id=event_id) is not None

    again = notification_send(user=user, type="welcome", source_event_id=event_id)

    assert again is None
    assert Notification.objects.filter(recipient=user).count() == 1
    assert Delivery.objects.filter(notification__recipient=user).count() == 4


def test_the_written_notification_is_what_the_orm_reads_back(in_tenant_a) -> None:
    user = make_user()
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")
    data = {"n": 1, "text": 'é "quoted"', "nested": {"list": [1, None, True]}}

    written = notification_send(
        user=user, type="announcement", title="T", body="B", data=data, batch=batch,
        is_security=True,
    )  # fmt: skip

    assert written is not None and written.pk is not None and written.created_at is not None
    read = Notification.objects.get(pk=written.pk)
    assert (read.recipient_id, read.type, read.title, read.body) == (
        user.pk,
        "announcement",
        "T",
        "B",
    )
    assert read.data == data and read.is_security and read.read_at is None
    assert (read.batch_id, read.source_event_id) == (batch.pk, batch.pk)
    assert read.created_at == written.created_at
    assert {d.notification_id for d in read.deliveries.all()} == {written.pk}


def test_a_batch_is_its_own_source_event(in_tenant_a) -> None:
    user = make_user()
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")

    first = notification_send(user=user, type="announcement", title="Hi", batch=batch)
    again = notification_send(user=user, type="announcement", title="Hi", batch=batch)

    assert first is not None and first.source_event_id == batch.pk and again is None


def test_notifications_send_in_chunks_skips_gone_users_and_is_idempotent(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    users = [make_user() for _ in range(5)]
    users[0].is_active = False
    users[0].save(update_fields=["is_active"])
    Preference.objects.create(user=users[1], type="announcement", channel="email", enabled=False)
    batch = NotificationBatch.objects.create(type="announcement", title="Hi", body="All")
    ids = [u.pk for u in users]

    with django_capture_on_commit_callbacks() as callbacks:
        result = notifications_send(
            user_ids=ids, type="announcement", title="Hi", body="All", batch=batch, chunk_size=2
        )
    again = notifications_send(
        user_ids=ids, type="announcement", title="Hi", batch=batch, chunk_size=2
    )

    assert (result.created, result.duplicates, result.missing) == (4, 0, 1)
    assert (again.created, again.duplicates, again.missing) == (0, 4, 1)
    # One enqueue per chunk with something to send (users[1] has nothing: e-mail is off).
    assert len(callbacks) == 2
    assert batch.notifications.count() == 4
    assert Delivery.objects.get(notification__recipient=users[1], channel="email").status == (
        "skipped"
    )
    assert Delivery.objects.filter(notification__batch=batch, status="pending").count() == 3


def test_notifications_send_costs_the_same_queries_for_a_bigger_chunk(
    in_tenant_a, django_assert_max_num_queries
) -> None:
    users = [make_user() for _ in range(30)]
    small, big = [u.pk for u in users[:3]], [u.pk for u in users[3:]]
    kwargs: dict[str, Any] = {
        "type": "announcement",
        "title": "Hi",
        "source_event_id": uuid.uuid4(),
    }

    with django_assert_max_num_queries(12) as small_run:
        notifications_send(user_ids=small, **kwargs)
    with django_assert_max_num_queries(len(small_run.captured_queries)):
        notifications_send(user_ids=big, **kwargs)


# ------------------------------------------------------------------ delivery_send


def _pending(user, channel: str = "email") -> Delivery:
    notification = notification_send(
        user=user, type="announcement", title="Hello", channels=[channel]
    )
    assert notification is not None
    return notification.deliveries.get(channel=channel)


def test_delivering_twice_sends_once(in_tenant_a) -> None:
    delivery = _pending(make_user())

    first = delivery_send(delivery_id=delivery.pk)
    second = delivery_send(delivery_id=delivery.pk)

    assert (first.status, second.status) == ("sent", "sent")
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.sent_at is not None
    assert delivery.provider == "email" and delivery.provider_message_id.startswith("<")


def test_a_delivery_scheduled_for_later_is_left_to_its_own_task(in_tenant_a) -> None:
    delivery = _pending(make_user())
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    outcome = delivery_send(delivery_id=delivery.pk)

    assert outcome.status == "not_due" and mail.outbox == []


def test_a_deleted_notification_leaves_nothing_to_send(in_tenant_a) -> None:
    delivery = _pending(make_user())
    delivery.notification.delete()

    assert delivery_send(delivery_id=delivery.pk).status == "missing"


def test_retrying_failed_deliveries_starts_their_attempts_over(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    user = make_user()
    failed, sent = _pending(user), _pending(user, "in_app")
    Delivery.objects.filter(pk=failed.pk).update(status="failed", attempts=5, last_error="boom")

    with django_capture_on_commit_callbacks() as callbacks:
        queued = deliveries_retry(Delivery.objects.filter(pk__in=[failed.pk, sent.pk]))

    failed.refresh_from_db()
    assert queued == 1 and len(callbacks) == 1
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert delivery_send(delivery_id=failed.pk).status == "sent"


def test_pending_deliveries_whose_task_was_lost_are_requeued(
    in_tenant_a, django_capture_on_commit_callbacks
) -> None:
    stale, fresh = _pending(make_user()), _pending(make_user())
    Delivery.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks() as callbacks:
        requeued = deliveries_requeue_stale(older_than=timedelta(minutes=15))

    assert requeued == 1 and len(callbacks) == 1
    assert fresh.status == "pending"


def test_the_stale_requeue_takes_a_claimed_delivery_only_once_its_claim_is_older_than_the_lease(
    in_tenant_a, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from apps.notifications.delivery import claim_lease
    from apps.notifications.delivery_queue import deliver

    handed: list[int] = []
    monkeypatch.setattr(
        deliver, "apply_async", lambda args=None, kwargs=None, **options: handed.append(args[0])
    )
    in_call, dead, lost = _pending(make_user()), _pending(make_user()), _pending(make_user())
    now = timezone.now()
    # All three written an hour ago: one is in a provider call right now, one was
    # claimed by a worker that died, one never had a task.
    Delivery.objects.filter(pk__in=[in_call.pk, dead.pk, lost.pk]).update(
        created_at=now - timedelta(hours=1)
    )
    Delivery.objects.filter(pk=in_call.pk).update(claimed_at=now - timedelta(seconds=1))
    Delivery.objects.filter(pk=dead.pk).update(
        claimed_at=now - claim_lease() - timedelta(seconds=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        requeued = deliveries_requeue_stale(older_than=timedelta(minutes=15))

    assert requeued == 2
    assert sorted(handed) == sorted([dead.pk, lost.pk])


def test_a_delivery_another_worker_is_sending_is_not_sent_and_looked_at_when_the_claim_expires(
    in_tenant_a,
) -> None:
    from apps.notifications.delivery import claim_lease

    delivery = _pending(make_user())
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now())

    outcome = delivery_send(delivery_id=delivery.pk)

    assert outcome.status == "busy" and mail.outbox == []
    assert outcome.retry_in is not None
    assert claim_lease().total_seconds() - 5 < outcome.retry_in <= claim_lease().total_seconds() + 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_turned_off_channels_are_read_for_exactly_the_users_and_type_asked(in_tenant_a) -> None:
    from apps.notifications.models import Preference
    from apps.notifications.sql import disabled_channels

    ann, bob, cat = make_user(), make_user(), make_user()
    Preference.objects.create(user=ann, type="announcement", channel="email", enabled=False)
    Preference.objects.create(user=ann, type="announcement", channel="sms", enabled=True)
    Preference.objects.create(user=bob, type="announcement", channel="push", enabled=False)
    Preference.objects.create(user=bob, type="welcome", channel="email", enabled=False)
    Preference.objects.create(user=cat, type="announcement", channel="sms", enabled=False)

    assert disabled_channels([ann.pk, bob.pk], "announcement") == {
        (ann.pk, "email"),
        (bob.pk, "push"),
    }
    assert disabled_channels([], "announcement") == set()


def test_a_channel_renders_only_the_bodies_it_sends(in_tenant_a, monkeypatch) -> None:
    from apps.notifications import rendering

    rendered: list[str] = []
    text, html = rendering.render_text, rendering.render_html

    def counted(render: Any) -> Any:
        def wrapper(type: str, name: str, context: dict[str, Any]) -> str:
            rendered.append(name)
            return str(render(type, name, context))

        return wrapper

    monkeypatch.setattr(rendering, "render_text", counted(text))
    monkeypatch.setattr(rendering, "render_html", counted(html))
    notification = notification_send(
        user=make_user(), type="announcement", title="T", body="B", channels=["in_app"]
    )
    assert notification is not None
    rendered.clear()

    message = rendering.outbound_message(notification)
    assert rendered == []
    assert "<p>B</p>" in message.html and rendered == ["body.html"]
    assert message.sms and message.push_body and rendered == ["body.html", "sms.txt", "push.txt"]
    message.html  # noqa: B018 (rendered once, then kept)
    assert rendered == ["body.html", "sms.txt", "push.txt"]
