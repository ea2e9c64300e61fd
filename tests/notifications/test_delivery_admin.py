"""Notifications in the tenant admin: every list renders, failed deliveries can be retried."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.notifications.models import Delivery, NotificationBatch
from apps.notifications.notify import notification_send
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_batch(tenant_a):
    with tenant_context(tenant_a.tenant):
        batch = NotificationBatch.objects.create(type="announcement", title="All hands")
        for _ in range(2):
            notification_send(user=make_user(), type="announcement", title="All hands", batch=batch)
        return batch


@pytest.mark.parametrize(
    "page",
    [
        "notification/",
        "notification/?is_security__exact=1&read=no",
        "delivery/?status__exact=failed&channel__exact=email",
        "preference/",
        "devicesubscription/",
        "notificationbatch/",
    ],
)
def test_the_lists_render(tenant_a, sent_batch, page) -> None:
    response = tenant_a.admin_client().get(f"/admin/notifications/{page}", HTTP_HOST=tenant_a.host)
    assert response.status_code == 200


def test_a_batch_shows_its_counts_per_status(tenant_a, sent_batch) -> None:
    response = tenant_a.admin_client().get(
        "/admin/notifications/notificationbatch/", HTTP_HOST=tenant_a.host
    )
    html = response.content.decode()
    assert '<td class="field-sent">2</td>' in html  # the two in-app deliveries
    assert '<td class="field-pending">2</td>' in html  # the two e-mails


def test_a_notification_shows_the_templates_in_use(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        notification = notification_send(user=make_user(), type="welcome", channels=["in_app"])
    assert notification is not None
    response = tenant_a.admin_client().get(
        f"/admin/notifications/notification/{notification.pk}/change/", HTTP_HOST=tenant_a.host
    )
    html = response.content.decode()
    assert "notifications/welcome/subject.txt" in html
    assert "notifications/default/push.txt" in html  # welcome has none of its own


def test_the_retry_action_queues_failed_deliveries_again(
    tenant_a, sent_batch, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a.tenant):
        email = Delivery.objects.filter(notification__batch=sent_batch, channel="email")
        failed = email.first()
        assert failed is not None
        Delivery.objects.filter(pk=failed.pk).update(status="failed", attempts=5)
        inbox = Delivery.objects.filter(notification__batch=sent_batch, channel="in_app").first()
        assert inbox is not None

    client = tenant_a.admin_client()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/admin/notifications/delivery/",
            {"action": "retry", "_selected_action": [failed.pk, inbox.pk]},
            HTTP_HOST=tenant_a.host,
        )

    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        failed.refresh_from_db()
        inbox.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert inbox.status == "sent"
    assert len(callbacks) == 1
