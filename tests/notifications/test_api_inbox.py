"""The in-app inbox: /api/v1/notifications, unread-count, {id}/read, read-all, DELETE {id}."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.notifications.models import Delivery, Notification
from tests.accounts.factories import make_user

INBOX = "/api/v1/notifications"


def notification_for(
    user: User,
    *,
    type: str = "announcement",
    title: str = "Hello",
    read: bool = False,
    channels: Sequence[str] = ("in_app", "email"),
    age_minutes: int = 0,
) -> Notification:
    """A notification with its deliveries (call inside tenant_context)."""
    notification = Notification.objects.create(
        recipient=user,
        type=type,
        title=title,
        body=f"{title} body",
        data={"k": title},
        read_at=timezone.now() if read else None,
    )
    if age_minutes:
        Notification.objects.filter(pk=notification.pk).update(
            created_at=timezone.now() - timedelta(minutes=age_minutes)
        )
        notification.refresh_from_db()
    for channel in channels:
        Delivery.objects.create(
            notification=notification,
            channel=channel,
            status=Delivery.Status.SENT if channel == "in_app" else Delivery.Status.PENDING,
        )
    return notification


@pytest.fixture
def member_token(api_a, member_a) -> str:
    return str(api_a.login("member@alpha.test")["access_token"])


@pytest.fixture
def inbox(tenant_a, member_a) -> dict[str, Notification]:
    """The member's three notifications (one read) and someone else's."""
    with tenant_context(tenant_a.tenant):
        other = make_user(email="other@alpha.test", username="other")
        return {
            "old": notification_for(member_a, title="Old", read=True, age_minutes=30),
            "welcome": notification_for(member_a, type="welcome", title="Welcome", age_minutes=20),
            "new": notification_for(member_a, title="New", channels=("in_app",), age_minutes=10),
            "others": notification_for(other, title="Not yours"),
        }


def _ids(response) -> list[int]:
    return [item["id"] for item in response.json()["data"]["items"]]


@pytest.mark.django_db
def test_the_list_is_mine_only_newest_first_with_delivery_statuses(
    api_a, member_token, inbox
) -> None:
    response = api_a.call("get", INBOX, token=member_token)

    assert response.status_code == 200
    page = response.json()["data"]
    assert _ids(response) == [inbox["new"].pk, inbox["welcome"].pk, inbox["old"].pk]
    assert page["total"] == 3 and page["page"] == 1 and page["total_pages"] == 1
    welcome = page["items"][1]
    assert set(welcome) == {
        "id",
        "type",
        "title",
        "body",
        "data",
        "is_security",
        "read_at",
        "created_at",
        "deliveries",
    }
    assert welcome["type"] == "welcome" and welcome["read_at"] is None
    assert welcome["data"] == {"k": "Welcome"} and welcome["is_security"] is False
    assert [(d["channel"], d["status"]) for d in welcome["deliveries"]] == [
        ("in_app", "sent"),
        ("email", "pending"),
    ]
    assert page["items"][2]["read_at"] is not None


@pytest.mark.django_db
def test_filters_unread_and_type(api_a, member_token, inbox) -> None:
    unread = api_a.call("get", INBOX, {"unread": "true"}, token=member_token)
    read = api_a.call("get", INBOX, {"unread": "false"}, token=member_token)
    welcome = api_a.call("get", INBOX, {"type": "welcome"}, token=member_token)
    both = api_a.call("get", INBOX, {"type": "announcement", "unread": "true"}, token=member_token)

    assert _ids(unread) == [inbox["new"].pk, inbox["welcome"].pk]
    assert _ids(read) == [inbox["old"].pk]
    assert _ids(welcome) == [inbox["welcome"].pk]
    assert _ids(both) == [inbox["new"].pk]


@pytest.mark.django_db
def test_pages(api_a, member_token, inbox) -> None:
    response = api_a.call("get", INBOX, {"page": 2, "page_size": 2}, token=member_token)

    assert _ids(response) == [inbox["old"].pk]
    assert response.json()["data"]["total_pages"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"unread": "maybe"}, "unread"),
        ({"page_size": "0"}, "page_size"),
        ({"colour": "red"}, "colour"),
        ({"type": "x" * 65}, "type"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    api_a, member_token, inbox, params, field
) -> None:
    response = api_a.call("get", INBOX, params, token=member_token)

    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "VALIDATION_ERROR"
    assert field in body["error"]["details"]


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_at_any_size(
    api_a, member_token, tenant_a, member_a
) -> None:
    api_a.call("get", f"{INBOX}/unread-count", token=member_token)  # the auth cache, warm
    counts = []
    for more in (2, 15):
        with tenant_context(tenant_a.tenant):
            for n in range(more):
                notification_for(member_a, title=f"n{n}")
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.call("get", INBOX, {"page_size": 50}, token=member_token)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] == 3  # COUNT, the page, its deliveries


@pytest.mark.django_db
def test_unread_count(api_a, member_token, inbox) -> None:
    response = api_a.call("get", f"{INBOX}/unread-count", token=member_token)

    assert response.status_code == 200
    assert response.json()["data"] == {"count": 2}


@pytest.mark.django_db
def test_mark_one_read_keeps_the_first_moment(api_a, member_token, inbox, tenant_a) -> None:
    path = f"{INBOX}/{inbox['new'].pk}/read"

    first = api_a.call("post", path, token=member_token)
    again = api_a.call("post", path, token=member_token)

    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["data"]["id"] == inbox["new"].pk
    assert first.json()["data"]["read_at"] is not None
    assert again.json()["data"]["read_at"] == first.json()["data"]["read_at"]
    count = api_a.call("get", f"{INBOX}/unread-count", token=member_token)
    assert count.json()["data"]["count"] == 1


@pytest.mark.django_db
def test_someone_elses_notification_is_not_found_and_untouched(
    api_a, member_token, inbox, tenant_a
) -> None:
    theirs = inbox["others"].pk

    read = api_a.call("post", f"{INBOX}/{theirs}/read", token=member_token)
    deleted = api_a.call("delete", f"{INBOX}/{theirs}", token=member_token)
    missing = api_a.call("post", f"{INBOX}/999999999/read", token=member_token)

    for response in (read, deleted, missing):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    with tenant_context(tenant_a.tenant):
        still = Notification.objects.get(pk=theirs)
        assert still.read_at is None


@pytest.mark.django_db
def test_read_all_marks_only_mine(api_a, member_token, inbox, tenant_a) -> None:
    first = api_a.call("post", f"{INBOX}/read-all", token=member_token)
    again = api_a.call("post", f"{INBOX}/read-all", token=member_token)

    assert first.status_code == 200 and first.json()["data"] == {"updated": 2}
    assert again.json()["data"] == {"updated": 0}
    with tenant_context(tenant_a.tenant):
        assert Notification.objects.get(pk=inbox["others"].pk).read_at is None
        assert Notification.objects.get(pk=inbox["old"].pk).read_at == inbox["old"].read_at


@pytest.mark.django_db
def test_delete_removes_it_and_its_deliveries(api_a, member_token, inbox, tenant_a) -> None:
    target = inbox["welcome"].pk

    response = api_a.call("delete", f"{INBOX}/{target}", token=member_token)
    again = api_a.call("delete", f"{INBOX}/{target}", token=member_token)

    assert response.status_code == 204 and response.content == b""
    assert again.status_code == 404
    with tenant_context(tenant_a.tenant):
        assert not Notification.objects.filter(pk=target).exists()
        assert not Delivery.objects.filter(notification_id=target).exists()
        assert Notification.objects.filter(recipient_id=inbox["old"].recipient_id).count() == 2


@pytest.mark.django_db
def test_anonymous_is_401(api_a, inbox) -> None:
    for method, path in (
        ("get", INBOX),
        ("get", f"{INBOX}/unread-count"),
        ("post", f"{INBOX}/read-all"),
        ("post", f"{INBOX}/{inbox['new'].pk}/read"),
        ("delete", f"{INBOX}/{inbox['new'].pk}"),
    ):
        assert api_a.call(method, path).status_code == 401


@pytest.mark.django_db
def test_tenants_are_isolated(api_a, api_b, member_token, inbox, tenant_b) -> None:
    # Given a user of tenant B whose id may well equal the member's in tenant A
    with tenant_context(tenant_b.tenant):
        make_user(email="member@beta.test", username="member")
    token_b = api_b.login("member@beta.test")["access_token"]

    listed = api_b.call("get", INBOX, token=token_b)
    read = api_b.call("post", f"{INBOX}/{inbox['new'].pk}/read", token=token_b)
    count = api_b.call("get", f"{INBOX}/unread-count", token=token_b)
    foreign_token = api_b.call("get", INBOX, token=member_token)

    assert listed.status_code == 200 and listed.json()["data"]["items"] == []
    assert read.status_code == 404
    assert count.json()["data"] == {"count": 0}
    assert foreign_token.status_code == 401
