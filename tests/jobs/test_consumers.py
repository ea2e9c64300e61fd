"""Event consumers: each reacts to a real service's event, and handles a given event_id once."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context

from apps.accounts.authentication import user_state_key
from apps.accounts.services.users import user_create, user_update
from apps.jobs.events import consume_once, event_dispatch
from apps.jobs.models import ConsumedEvent, OutboxEvent
from apps.notifications import consumers
from apps.notifications.models import Delivery, Notification
from apps.rbac.grants import grants_key
from tests.accounts.factories import make_user


@pytest.mark.django_db
def test_a_new_user_gets_one_welcome_in_the_inbox_and_by_email_in_their_tenant(
    tenant_a, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a.tenant), django_capture_on_commit_callbacks(execute=True):
        user = user_create(email="fresh@alpha.test", password="a-good-long-passphrase")
    with tenant_context(tenant_a.tenant):
        event = OutboxEvent.objects.get(event_type="user.created", data__user_id=user.pk)
        welcome = Notification.objects.get(recipient=user, type="welcome")
        assert welcome.source_event_id == event.event_id
        assert sorted(welcome.deliveries.values_list("channel", "status")) == [
            ("email", "sent"),
            ("in_app", "sent"),
        ]
    [message] = [m for m in mail.outbox if m.to == ["fresh@alpha.test"]]
    assert tenant_a.tenant.name in message.subject

    # The relay (or the broker) delivers the same event again: nothing more happens.
    with tenant_context(tenant_a.tenant), django_capture_on_commit_callbacks(execute=True):
        assert event_dispatch(event) is True
        consumers.welcome_send_task.delay(str(event.event_id), user.pk)
    with tenant_context(tenant_a.tenant):
        assert Notification.objects.filter(recipient=user, type="welcome").count() == 1
        assert Delivery.objects.filter(notification__recipient=user).count() == 2
        assert ConsumedEvent.objects.filter(event_id=event.event_id).count() == 1
    assert len([m for m in mail.outbox if m.to == ["fresh@alpha.test"]]) == 1


@pytest.mark.django_db
def test_a_password_change_sends_one_security_notice(tenant_a, eager_tasks) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user()
        event_id = str(uuid.uuid4())
        for _ in range(2):
            consumers.password_changed_notice_task.delay(event_id, user.pk, "reset")
        [notice] = Notification.objects.filter(recipient=user, type="security.password_changed")
        assert notice.is_security is True
        assert notice.data == {"how": "reset"}
        assert str(notice.source_event_id) == event_id


@pytest.mark.django_db
def test_a_user_update_drops_their_cached_state_once_per_event(
    tenant_a, eager_tasks, redis_keys_cleanup, django_capture_on_commit_callbacks
) -> None:
    redis = get_redis_connection("default")
    with tenant_context(tenant_a.tenant):
        user = make_user()
        keys = [user_state_key(user.pk), grants_key(user.pk)]
        redis_keys_cleanup.extend(keys)
        for key in keys:
            redis.set(key, b"stale")
        with django_capture_on_commit_callbacks(execute=True):
            user_update(user=user, changes={"full_name": "Renamed"}, by=None, managed=True)
        assert redis.exists(*keys) == 0
        event = OutboxEvent.objects.get(event_type="user.updated", data__user_id=user.pk)
        assert ConsumedEvent.objects.filter(
            consumer="notifications.user_caches", event_id=event.event_id
        ).exists()

        for key in keys:
            redis.set(key, b"warm again")
        assert consumers.user_caches_refresh_task.delay(str(event.event_id), user.pk).get() is False
        assert redis.exists(*keys) == 2  # a repeat of the event does nothing


@pytest.mark.django_db
def test_a_consumer_that_fails_leaves_no_mark_so_a_redelivery_does_the_work(tenant_a) -> None:
    event_id = str(uuid.uuid4())

    def fails() -> None:
        raise ConnectionError("provider unreachable")

    with tenant_context(tenant_a.tenant):
        with pytest.raises(ConnectionError):
            consume_once(consumer="test.flaky", event_id=event_id, handle=fails)
        assert not ConsumedEvent.objects.filter(consumer="test.flaky").exists()
        assert (
            consume_once(consumer="test.flaky", event_id=event_id, handle=lambda: "done") == "done"
        )
        # Handled: a further delivery returns None without calling the handler.
        assert consume_once(consumer="test.flaky", event_id=event_id, handle=fails) is None
        # Another consumer of the same event is independent.
        assert consume_once(consumer="test.other", event_id=event_id, handle=lambda: "ran") == "ran"
