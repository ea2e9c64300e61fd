"""What the notifications admin may write, and how: through the inbox services."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.notifications.models import Delivery, DeviceSubscription, Notification, Preference
from apps.notifications.notify import notification_send
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db
BASE = "/admin/notifications"


def test_a_security_notice_cannot_be_turned_off_from_the_admin(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user()
    client = tenant_a.admin_client()
    refused = client.post(
        f"{BASE}/preference/add/",
        {"user": user.pk, "type": "security.password_changed", "channel": "email"},
        HTTP_HOST=tenant_a.host,
    )
    assert refused.status_code == 200  # the form again, with the error
    with tenant_context(tenant_a.tenant):
        assert not Preference.objects.filter(user=user).exists()

    saved = client.post(
        f"{BASE}/preference/add/",
        {"user": user.pk, "type": "announcement", "channel": "email"},  # enabled unticked
        HTTP_HOST=tenant_a.host,
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with tenant_context(tenant_a.tenant):
        preference = Preference.objects.get(user=user)
        assert (preference.type, preference.channel, preference.enabled) == (
            "announcement", "email", False,
        )  # fmt: skip


def test_deliveries_and_devices_are_not_written_by_hand(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user()
        notification = notification_send(
            user=user, type="announcement", title="Hi", channels=["in_app"]
        )
        assert notification is not None
        delivery = Delivery.objects.get(notification=notification)
    client = tenant_a.admin_client()
    host = {"HTTP_HOST": tenant_a.host}
    assert client.get(f"{BASE}/delivery/{delivery.pk}/delete/", **host).status_code == 403
    assert client.get(f"{BASE}/devicesubscription/add/", **host).status_code == 403

    # A notification is deleted as its recipient deletes it: with its deliveries.
    deleted = client.post(f"{BASE}/notification/{notification.pk}/delete/", {"post": "yes"}, **host)
    assert deleted.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not Notification.objects.filter(pk=notification.pk).exists()
        assert not Delivery.objects.filter(pk=delivery.pk).exists()


def test_a_device_is_removed_through_the_service(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        device = DeviceSubscription.objects.create(
            user=make_user(), kind="fcm", endpoint="x" * 40, keys={}
        )
    response = tenant_a.admin_client().post(
        f"{BASE}/devicesubscription/{device.pk}/delete/", {"post": "yes"}, HTTP_HOST=tenant_a.host
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not DeviceSubscription.objects.filter(pk=device.pk).exists()
