"""Delivery with a real Celery worker and broker: the breaker trips and recovers across
processes (its state in Redis), and a delivery run twice sends once.

The worker is pointed at a Twilio-style API the test runs (session_http_stub),
with short breaker and retry times. Rows the worker needs are written by the
worker itself (setup/cleanup tasks below), because the test's own transaction
is never committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context

from apps.jobs.bases import tenant_task
from apps.notifications.breaker import breaker_namespace
from apps.notifications.models import Delivery
from tests.jobs.processes import wait_for

PHONE = "+14155550199"


# ------------------------------------------------------------------ run in the worker


@tenant_task(name="tests.notifications.sms_setup")
def sms_setup(marker: str, count: int) -> list[int]:
    """A user with a phone number and `count` SMS notifications (the worker delivers them)."""
    from apps.accounts.models import User
    from apps.notifications.notify import notification_send

    user = User.objects.create_user(
        f"{marker}@worker.test", "a-long-enough-password-42", username=marker, phone_number=PHONE
    )
    ids = []
    for i in range(count):
        notification = notification_send(
            user=user, type="announcement", title=f"{marker}-{i}", body="hi", channels=["sms"]
        )
        assert notification is not None
        ids.append(notification.deliveries.get().pk)
    return ids


@tenant_task(name="tests.notifications.cleanup")
def cleanup(marker: str) -> int:
    from apps.accounts.models import User

    deleted, _ = User.objects.filter(email=f"{marker}@worker.test").delete()
    return deleted


# ------------------------------------------------------------------ the worker


@pytest.fixture(scope="module")
def sms_worker(session_tenants, celery_worker, session_http_stub) -> Iterator[str]:
    """A real worker delivering SMS to the local stub, with a 2 s breaker reset timeout."""
    env = {
        "NOTIFICATION_SMS_PROVIDER": "apps.notifications.channels.sms.TwilioSmsProvider",
        "TWILIO_BASE_URL": session_http_stub.url,
        "TWILIO_ACCOUNT_SID": "ACworker",
        "TWILIO_AUTH_TOKEN": "worker-token",
        "TWILIO_FROM_NUMBER": "+15005550006",
        "NOTIFICATION_BREAKER_RESET_SECONDS": "2",
        "NOTIFICATION_RETRY_BASE_SECONDS": "1",
        "NOTIFICATION_RETRY_MAX_SECONDS": "2",
    }
    # Its own queue, and the default one: notification_send() enqueues deliveries there.
    with celery_worker(
        prefix="test-notif", env=env, also_queues=["celery"], imports=[__name__]
    ) as worker:
        yield worker.queue


@pytest.fixture
def worker_rows(tenant_a, sms_worker) -> Iterator[Callable[[int], tuple[str, list[int]]]]:
    """worker_rows(n): n SMS deliveries committed by the worker; removed after the test."""
    markers: list[str] = []

    def make(count: int) -> tuple[str, list[int]]:
        marker = f"w{uuid.uuid4().hex[:10]}"
        markers.append(marker)
        with tenant_context(tenant_a.tenant):
            ids = sms_setup.apply_async(args=[marker, count], queue=sms_worker).get(timeout=30)
        return marker, ids

    yield make
    with tenant_context(tenant_a.tenant):
        for marker in markers:
            cleanup.apply_async(args=[marker], queue=sms_worker).get(timeout=30)


def _for(marker: str, stub) -> list:
    return [r for r in stub.requests if marker in r.form().get("Body", "")]


@pytest.mark.worker
@pytest.mark.django_db
def test_a_provider_failing_five_times_opens_its_breaker_and_deliveries_go_out_when_it_recovers(
    tenant_a, session_http_stub, worker_rows
) -> None:
    session_http_stub.always(503, {"message": "down"})
    marker, ids = worker_rows(3)
    redis = get_redis_connection("default")
    state_key = f"{breaker_namespace('twilio')}:pybreaker:state"
    waited: list[int] = []

    def breaker_open() -> bool:
        with tenant_context(tenant_a.tenant):
            waited.extend(
                Delivery.objects.filter(
                    pk__in=ids, status="pending", attempts__lt=5, last_error__contains="breaker"
                ).values_list("pk", flat=True)
            )
        return redis.get(state_key) == b"open"

    # Transient failures are retried by the worker until the fifth opens the breaker.
    wait_for(breaker_open, timeout=30, interval=0.05, what="the breaker to open")
    failures = len(_for(marker, session_http_stub))
    session_http_stub.always(201, {"sid": "SMworker"})

    def all_sent() -> bool:
        breaker_open()  # keeps looking for a delivery that waits on the breaker
        with tenant_context(tenant_a.tenant):
            return Delivery.objects.filter(pk__in=ids, status="sent").count() == len(ids)

    wait_for(all_sent, timeout=60, interval=0.05, what="every delivery to be sent")

    assert failures == 5
    assert waited, "no delivery was seen waiting on the open breaker"
    assert redis.get(state_key) == b"closed"
    with tenant_context(tenant_a.tenant):
        rows = list(Delivery.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    # Five failed attempts plus one success each: waiting on the breaker spent none.
    assert sum(rows) == 5 + len(ids)
    assert len(_for(marker, session_http_stub)) == 5 + len(ids)


@pytest.mark.worker
@pytest.mark.django_db
def test_a_delivery_run_twice_by_the_worker_sends_once(
    tenant_a, session_http_stub, sms_worker, worker_rows
) -> None:
    from apps.notifications.delivery_queue import deliver

    session_http_stub.always(201, {"sid": "SMonce"})
    marker, [delivery_id] = worker_rows(1)

    with tenant_context(tenant_a.tenant):
        again = [
            deliver.apply_async(args=[delivery_id], queue=sms_worker).get(timeout=30)
            for _ in range(2)
        ]
        delivery = Delivery.objects.get(pk=delivery_id)

    assert again == ["sent", "sent"]
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == (
        "sent",
        1,
        "SMonce",
    )
    assert len(_for(marker, session_http_stub)) == 1
