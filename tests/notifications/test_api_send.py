"""POST /api/v1/notifications/send and GET .../batches/{id}: notifications.send, scoped
senders, the audience resolved in the worker (run eagerly here)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.notifications.models import Notification, NotificationBatch
from apps.organizations.models import Membership
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import make_user
from tests.organizations.factories import org_create

SEND = "/api/v1/notifications/send"
BATCHES = "/api/v1/notifications/batches"


@pytest.fixture
def world(tenant_a):
    """A tree /root/ -> /root/child/ and /other/, with members; a role; odd users."""
    with tenant_context(tenant_a.tenant):
        root = org_create("Root")
        child = org_create("Child", root)
        other = org_create("Other")
        people = {
            name: make_user(email=f"{name}@alpha.test", username=name)
            for name in ("ann", "bob", "cat", "dan", "eve", "sender")
        }
        people["gone"] = make_user(email="gone@alpha.test", username="gone", is_deleted=True)
        people["idle"] = make_user(email="idle@alpha.test", username="idle", is_active=False)
        for user, org in (
            ("ann", root),
            ("bob", child),
            ("idle", child),
            ("gone", child),
            ("cat", other),
            ("sender", root),
        ):
            Membership.objects.create(user=people[user], organization=org)
        role = Role.objects.create(name="Readers", permissions=[])
        for user in ("bob", "dan", "idle"):
            RoleAssignment.objects.create(user=people[user], role=role)
    return {"root": root, "child": child, "other": other, "role": role, **people}


def message(**audience) -> dict:
    return {"type": "announcement", "title": "Hello", "body": "All hands at 3.", **audience}


def recipients(tenant_a, batch_id) -> list[str]:
    with tenant_context(tenant_a.tenant):
        return sorted(
            Notification.objects.filter(batch_id=batch_id).values_list(
                "recipient__username", flat=True
            )
        )


def batches(tenant_a) -> int:
    with tenant_context(tenant_a.tenant):
        return NotificationBatch.objects.count()


@pytest.fixture
def send(api_a, eager_tasks, django_capture_on_commit_callbacks):
    """POST /send with the fan-out run as the worker would, once the request commits."""

    def post(body: dict, token: str):
        with django_capture_on_commit_callbacks(execute=True):
            return api_a.call("post", SEND, body, token=token)

    return post


@pytest.fixture
def scoped_token(api_a, world, grant) -> str:
    """The sender holds notifications.send in /root/ only."""
    grant(world["sender"], ["notifications.send"], organization=world["root"])
    return str(api_a.login("sender@alpha.test")["access_token"])


@pytest.mark.django_db
def test_accepted_at_once_then_sent_to_each_live_active_user_once(
    api_a, owner_token, world, tenant_a, send
) -> None:
    body = message(
        users=[world["ann"].pk, world["cat"].pk],
        roles=[world["role"].pk],
        organizations=[world["root"].pk],
        channels=["in_app", "sms"],
        data={"url": "/news/1"},
    )

    response = send(body, owner_token)

    assert response.status_code == 202, response.content
    accepted = response.json()["data"]
    assert accepted["status"] == "queued"
    assert response["Location"] == f"{BATCHES}/{accepted['batch_id']}"
    # root's subtree (ann, bob, sender), the role (bob, dan), the users (ann, cat);
    # not idle (inactive) nor gone (deleted); bob and ann once.
    assert recipients(tenant_a, accepted["batch_id"]) == ["ann", "bob", "cat", "dan", "sender"]

    progress = api_a.call("get", f"{BATCHES}/{accepted['batch_id']}", token=owner_token)

    assert progress.status_code == 200
    batch = progress.json()["data"]
    assert batch["status"] == "done" and batch["finished_at"] is not None
    assert batch["total_recipients"] == 5 and batch["notifications_created"] == 5
    assert batch["deliveries"]["in_app"] == {
        "pending": 0, "sent": 5, "failed": 0, "skipped": 0, "total": 5,
    }  # fmt: skip
    assert batch["deliveries"]["sms"]["skipped"] == 5  # nobody has a phone number
    assert batch["delivery_totals"]["total"] == 10
    assert batch["audience"] == {
        "users": [world["ann"].pk, world["cat"].pk],
        "roles": [world["role"].pk],
        "organizations": [world["root"].pk],
    }
    assert batch["channels"] == ["in_app", "sms"] and batch["data"] == {"url": "/news/1"}
    with tenant_context(tenant_a.tenant):
        note = Notification.objects.get(batch_id=batch["id"], recipient=world["dan"])
        assert (note.title, note.body, note.data) == (
            "Hello",
            "All hands at 3.",
            {"url": "/news/1"},
        )
        assert AuditEvent.objects.filter(
            action="notification.batch_created", target_id=batch["id"]
        ).exists()


@pytest.mark.django_db
def test_the_call_returns_before_anything_is_sent(api_a, owner_token, world, tenant_a) -> None:
    # No worker ran (the transaction never committed): the batch waits, queued.
    response = api_a.call("post", SEND, message(users=[world["ann"].pk]), token=owner_token)

    assert response.status_code == 202
    batch_id = response.json()["data"]["batch_id"]
    assert recipients(tenant_a, batch_id) == []
    progress = api_a.call("get", f"{BATCHES}/{batch_id}", token=owner_token).json()["data"]
    assert progress["status"] == "queued" and progress["total_recipients"] == 0


@pytest.mark.django_db
def test_without_the_permission_403(api_a, member_a, world, tenant_a) -> None:
    token = api_a.login("member@alpha.test")["access_token"]

    response = api_a.call("post", SEND, message(users=[world["ann"].pk]), token=token)
    batch = api_a.call("get", f"{BATCHES}/{uuid.uuid4()}", token=token)
    anonymous = api_a.call("post", SEND, message(users=[world["ann"].pk]))

    assert response.status_code == 403 and batch.status_code == 403
    assert "notifications.send" in response.json()["error"]["message"]
    assert anonymous.status_code == 401
    assert batches(tenant_a) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "Hi", "users": [1]}, "type"),
        ({"type": "announcement", "users": [1]}, "title"),
        ({**message(), "type": "no.such.type", "users": [1]}, "type"),
        ({**message(), "type": "security.password_changed", "users": [1]}, "type"),
        (message(), "non_field_errors"),
        (message(users=[], roles=[], organizations=[]), "non_field_errors"),
        (message(users="1,2"), "users"),
        (message(users=[0]), "users"),
        (message(users=[1], channels=["fax"]), "channels"),
        (message(users=[1], channels=[]), "channels"),
        (message(users=[1], data={"blob": "x" * 9000}), "data"),
        (message(users=[1], data=[1, 2]), "data"),
        ({**message(users=[1]), "title": "x" * 201}, "title"),
        ({**message(users=[1]), "priority": "high"}, "priority"),
    ],
)
def test_bad_input_is_422_and_nothing_is_queued(
    api_a, owner_token, world, tenant_a, body, field
) -> None:
    response = api_a.call("post", SEND, body, token=owner_token)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert field in response.json()["error"]["details"]
    assert batches(tenant_a) == 0


@pytest.mark.django_db
def test_unknown_ids_are_422_naming_them(api_a, owner_token, world, tenant_a) -> None:
    response = api_a.call(
        "post",
        SEND,
        message(
            users=[world["ann"].pk, 987654, world["gone"].pk],
            roles=[world["role"].pk, 876543],
            organizations=[765432],
        ),
        token=owner_token,
    )

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details == {
        "users": [f"Unknown ids: 987654, {world['gone'].pk}."],
        "roles": ["Unknown ids: 876543."],
        "organizations": ["Unknown ids: 765432."],
    }
    assert batches(tenant_a) == 0


@pytest.mark.django_db
def test_an_audience_with_nobody_reachable_is_422(api_a, owner_token, world, tenant_a) -> None:
    response = api_a.call("post", SEND, message(users=[world["idle"].pk]), token=owner_token)

    assert response.status_code == 422
    assert "Nobody to send to" in response.json()["error"]["details"]["non_field_errors"][0]
    assert batches(tenant_a) == 0


@pytest.mark.django_db
def test_a_scoped_sender_reaches_inside_their_subtree(
    api_a, scoped_token, world, tenant_a, send
) -> None:
    response = send(
        message(organizations=[world["child"].pk], users=[world["ann"].pk]), scoped_token
    )

    assert response.status_code == 202, response.content
    assert recipients(tenant_a, response.json()["data"]["batch_id"]) == ["ann", "bob"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("audience", "field"),
    [
        (lambda w: {"organizations": [w["other"].pk]}, "organizations"),
        (lambda w: {"organizations": [w["root"].pk, w["other"].pk]}, "organizations"),
        (lambda w: {"users": [w["cat"].pk]}, "users"),  # a member of /other/ only
        (lambda w: {"users": [w["dan"].pk]}, "users"),  # a member of nothing
    ],
)
def test_a_scoped_sender_is_refused_outside_it(
    api_a, scoped_token, world, tenant_a, audience, field
) -> None:
    response = api_a.call("post", SEND, message(**audience(world)), token=scoped_token)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "FORBIDDEN" and list(error["details"]) == [field]
    assert batches(tenant_a) == 0


@pytest.mark.django_db
def test_a_scoped_senders_roles_reach_only_holders_inside_it(
    api_a, scoped_token, world, tenant_a, send
) -> None:
    # The role's holders: bob (in /root/child/), dan (no organization), idle (inactive).
    response = send(message(roles=[world["role"].pk]), scoped_token)

    assert response.status_code == 202
    assert recipients(tenant_a, response.json()["data"]["batch_id"]) == ["bob"]


@pytest.mark.django_db
def test_a_scoped_sender_sees_only_their_own_batches(
    api_a, owner_token, scoped_token, world, tenant_a
) -> None:
    mine = api_a.call("post", SEND, message(users=[world["ann"].pk]), token=scoped_token)
    theirs = api_a.call("post", SEND, message(users=[world["ann"].pk]), token=owner_token)
    mine_id, theirs_id = mine.json()["data"]["batch_id"], theirs.json()["data"]["batch_id"]

    assert api_a.call("get", f"{BATCHES}/{mine_id}", token=scoped_token).status_code == 200
    assert api_a.call("get", f"{BATCHES}/{theirs_id}", token=scoped_token).status_code == 404
    assert api_a.call("get", f"{BATCHES}/{mine_id}", token=owner_token).status_code == 200


@pytest.mark.django_db
def test_an_unknown_batch_is_404(api_a, owner_token) -> None:
    response = api_a.call("get", f"{BATCHES}/{uuid.uuid4()}", token=owner_token)
    malformed = api_a.call("get", f"{BATCHES}/not-a-uuid", token=owner_token)

    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert malformed.status_code == 404


@pytest.mark.django_db
def test_batches_stay_in_their_tenant(api_a, api_b, owner_token, world, tenant_b) -> None:
    from tests.conftest import ADMIN_PASSWORD

    accepted = api_a.call("post", SEND, message(users=[world["ann"].pk]), token=owner_token)
    token_b = api_b.login(tenant_b.admin_email, ADMIN_PASSWORD)["access_token"]

    response = api_b.call("get", f"{BATCHES}/{accepted.json()['data']['batch_id']}", token=token_b)
    # Tenant B's ids are not tenant A's: ann's id names nobody there (or someone else).
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_batchs_progress_costs_two_queries_at_any_size(
    api_a, owner_token, world, tenant_a, send
) -> None:
    small = send(message(users=[world["ann"].pk]), owner_token).json()["data"]["batch_id"]
    large = send(message(organizations=[world["root"].pk], roles=[world["role"].pk]), owner_token)
    counts = []
    for batch_id in (small, large.json()["data"]["batch_id"]):
        api_a.call("get", f"{BATCHES}/{batch_id}", token=owner_token)  # the auth cache, warm
        with CaptureQueriesContext(connection) as ctx:
            response = api_a.call("get", f"{BATCHES}/{batch_id}", token=owner_token)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    # The batch with its notification count, then every delivery count in one GROUP BY.
    assert counts == [2, 2]
