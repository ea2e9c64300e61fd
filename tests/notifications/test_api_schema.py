"""The notifications API in the OpenAPI schema: every operation named and tagged, and real
responses valid against what it declares."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.notifications.models import Delivery, Notification
from tests.core.test_openapi import fetch_schema, validate
from tests.notifications.test_api_devices import webpush

PREFIX = "/api/v1/notifications"


@pytest.mark.django_db
def test_every_operation_has_an_id_the_tag_and_its_bodies(api, tenant_a) -> None:
    doc = fetch_schema(api, tenant_a.host)
    operations = {
        (path, method): operation
        for path, item in doc["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in item.items()
    }

    assert len(operations) == 12
    for (path, method), operation in operations.items():
        assert operation["tags"] == ["notifications"], (path, method)
        assert operation["operationId"].startswith("notifications_"), (path, method)
        successes = [s for s in operation["responses"] if s.startswith("2")]
        assert successes, (path, method)
        for status in successes:
            if status != "204":
                assert "content" in operation["responses"][status], (path, method, status)
    for path, method in (
        (f"{PREFIX}/preferences", "put"),
        (f"{PREFIX}/devices", "post"),
        (f"{PREFIX}/send", "post"),
    ):
        assert "requestBody" in operations[(path, method)], (path, method)
    assert "202" in operations[(f"{PREFIX}/send", "post")]["responses"]
    parameters = {p["name"] for p in operations[(PREFIX, "get")]["parameters"]}
    assert {"unread", "type", "page", "page_size"} <= parameters


@pytest.mark.django_db
def test_real_responses_validate_against_the_schema(
    api, api_a, tenant_a, member_a, owner_token
) -> None:
    doc = fetch_schema(api, tenant_a.host)
    token = api_a.login("member@alpha.test")["access_token"]
    with tenant_context(tenant_a.tenant):
        note = Notification.objects.create(recipient=member_a, type="welcome", title="Hi")
        Delivery.objects.create(notification=note, channel="email")

    def check(method: str, path: str, template: str, body=None, as_token=token):
        response = api_a.call(method, path, body, token=as_token)
        assert response.status_code < 500, response.content
        validate(doc, template, method, response)
        return response

    check("get", PREFIX, PREFIX)
    check("get", f"{PREFIX}?unread=maybe", PREFIX)  # the 422 envelope
    check("get", f"{PREFIX}/unread-count", f"{PREFIX}/unread-count")
    check("post", f"{PREFIX}/{note.pk}/read", f"{PREFIX}/{{notification_id}}/read")
    check("post", f"{PREFIX}/0/read", f"{PREFIX}/{{notification_id}}/read")  # the 404
    check("post", f"{PREFIX}/read-all", f"{PREFIX}/read-all")
    check("get", f"{PREFIX}/preferences", f"{PREFIX}/preferences")
    body = {"preferences": [{"type": "welcome", "channel": "sms", "enabled": False}]}
    check("put", f"{PREFIX}/preferences", f"{PREFIX}/preferences", body)
    device = webpush()
    assert check("post", f"{PREFIX}/devices", f"{PREFIX}/devices", device).status_code == 201
    assert check("post", f"{PREFIX}/devices", f"{PREFIX}/devices", device).status_code == 200
    check("get", f"{PREFIX}/devices", f"{PREFIX}/devices")
    send = {"type": "announcement", "title": "Hi", "users": [member_a.pk]}
    check("post", f"{PREFIX}/send", f"{PREFIX}/send", send, as_token=token)  # the 403
    accepted = check("post", f"{PREFIX}/send", f"{PREFIX}/send", send, as_token=owner_token)
    batch_id = accepted.json()["data"]["batch_id"]
    check(
        "get",
        f"{PREFIX}/batches/{batch_id}",
        f"{PREFIX}/batches/{{batch_id}}",
        as_token=owner_token,
    )
