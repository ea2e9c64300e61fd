"""/api/v1/audit-events: read-only, behind audit.view, filtered, paginated, per tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from tests.audit.conftest import AUDIT, error


def _event(**fields) -> AuditEvent:
    """A row with `occurred_at` set (auto_now_add ignores it on create). In tenant_context."""
    occurred_at = fields.pop("occurred_at", None)
    event = AuditEvent.objects.create(**{"target_type": "user", **fields})
    if occurred_at is not None:
        AuditEvent.objects.filter(pk=event.pk).update(occurred_at=occurred_at)
        event.refresh_from_db()
    return event


def _count(tenant_fixture) -> int:
    with tenant_context(tenant_fixture.tenant):
        return AuditEvent.objects.count()


# ------------------------------------------------------------------ who may read


@pytest.mark.django_db
def test_without_audit_view_it_is_403_in_the_envelope(api_a, member_a) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    for path in (AUDIT, f"{AUDIT}/1"):
        refused = error(api_a.call("get", path, token=token), 403)
        assert refused["code"] == "FORBIDDEN" and "audit.view" in refused["message"]
    assert error(api_a.call("get", AUDIT), 401)["code"] == "UNAUTHORIZED"


@pytest.mark.django_db
def test_with_audit_view_the_log_is_listed_newest_first_with_every_field(
    api_a, auditor_a, auditor_token, tenant_a
) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):
        AuditEvent.objects.all().delete()  # what provisioning left
        older = _event(action="user.created", target_id="7", occurred_at=now - timedelta(hours=2))
        newer = _event(
            action="user.updated",
            target_id="7",
            actor=auditor_a,
            actor_email=auditor_a.email,
            changes={"full_name": ["A", "B"]},
            ip_address="10.1.2.3",
            request_id="req-xyz",
            occurred_at=now - timedelta(hours=1),
        )

    response = api_a.call("get", AUDIT, token=auditor_token)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["total"] == 2 and data["page"] == 1 and data["total_pages"] == 1
    assert [item["id"] for item in data["items"]] == [newer.pk, older.pk]
    assert data["items"][0] == {
        "id": newer.pk,
        "occurred_at": data["items"][0]["occurred_at"],
        "actor_id": auditor_a.pk,
        "actor_email": "auditor@alpha.test",
        "action": "user.updated",
        "target_type": "user",
        "target_id": "7",
        "changes": {"full_name": ["A", "B"]},
        "ip_address": "10.1.2.3",
        "request_id": "req-xyz",
    }
    assert data["items"][1]["actor_id"] is None and data["items"][1]["ip_address"] is None


@pytest.mark.django_db
def test_one_event_is_read_by_id_and_a_missing_one_is_404(api_a, auditor_token, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        event = _event(action="role.created", target_type="role", target_id="3")
    found = api_a.call("get", f"{AUDIT}/{event.pk}", token=auditor_token)
    assert found.status_code == 200
    assert found.json()["data"]["action"] == "role.created"
    missing = error(api_a.call("get", f"{AUDIT}/{event.pk + 1000}", token=auditor_token), 404)
    assert missing["code"] == "NOT_FOUND"


# ------------------------------------------------------------------ filters


@pytest.fixture
def log(tenant_a, auditor_a, member_a) -> dict[str, AuditEvent]:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):
        AuditEvent.objects.all().delete()
        return {
            "created": _event(
                action="user.created", target_id="1", occurred_at=now - timedelta(days=3)
            ),
            "updated": _event(
                action="user.updated",
                target_id="1",
                actor=auditor_a,
                occurred_at=now - timedelta(days=2),
            ),
            "role": _event(
                action="role.created",
                target_type="role",
                target_id="1",
                actor=member_a,
                occurred_at=now - timedelta(days=1),
            ),
            "deleted": _event(
                action="user.deleted", target_id="2", actor=auditor_a, occurred_at=now
            ),
        }


def _listed(api_a, token: str, **filters) -> list[int]:
    response = api_a.call("get", AUDIT, filters, token=token)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["data"]["items"]]


@pytest.mark.django_db
def test_each_filter_narrows_the_list(api_a, auditor_a, auditor_token, member_a, log) -> None:
    ids = {name: event.pk for name, event in log.items()}
    assert _listed(api_a, auditor_token, actor=auditor_a.pk) == [ids["deleted"], ids["updated"]]
    assert _listed(api_a, auditor_token, actor=member_a.pk) == [ids["role"]]
    assert _listed(api_a, auditor_token, target_type="role") == [ids["role"]]
    assert _listed(api_a, auditor_token, target_type="user", target_id="1") == [
        ids["updated"],
        ids["created"],
    ]
    assert _listed(api_a, auditor_token, action="user.updated") == [ids["updated"]]
    assert _listed(api_a, auditor_token, action="user.") == []  # exact, not a prefix
    assert _listed(api_a, auditor_token, action_prefix="user.") == [
        ids["deleted"],
        ids["updated"],
        ids["created"],
    ]
    since = log["updated"].occurred_at.isoformat()
    until = log["deleted"].occurred_at.isoformat()
    # since inclusive, until exclusive
    assert _listed(api_a, auditor_token, since=since) == [
        ids["deleted"],
        ids["role"],
        ids["updated"],
    ]
    assert _listed(api_a, auditor_token, until=until) == [
        ids["role"],
        ids["updated"],
        ids["created"],
    ]
    assert _listed(api_a, auditor_token, since=since, until=until) == [ids["role"], ids["updated"]]
    assert _listed(
        api_a, auditor_token, action_prefix="user.", actor=auditor_a.pk, since=since
    ) == [
        ids["deleted"],
        ids["updated"],
    ]


@pytest.mark.django_db
def test_the_list_is_paginated(api_a, auditor_token, log) -> None:
    response = api_a.call("get", AUDIT, {"page": 2, "page_size": 3}, token=auditor_token)
    data = response.json()["data"]
    assert (data["total"], data["page"], data["page_size"], data["total_pages"]) == (4, 2, 3, 2)
    assert [item["id"] for item in data["items"]] == [log["created"].pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45T00:00:00Z"}, "until"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "since"),
        ({"actor": "someone"}, "actor"),
        ({"actor": "0"}, "actor"),
        ({"action": "x" * 65}, "action"),
        ({"actor_email": "a@b.test"}, "actor_email"),  # not a filter: said, not ignored
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_bad_filters_are_422_with_the_field_named_and_change_nothing(
    api_a, auditor_token, tenant_a, log, params, field
) -> None:
    before = _count(tenant_a)
    body = error(api_a.call("get", AUDIT, params, token=auditor_token), 422)
    assert body["code"] == "VALIDATION_ERROR" and field in body["details"]
    assert _count(tenant_a) == before


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_at_any_size(api_a, auditor_token, tenant_a, log) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api_a.call("get", AUDIT, token=auditor_token).status_code == 200
        return len(captured)

    queries()  # warms the per-user caches (auth state, grants)
    small = queries()
    with tenant_context(tenant_a.tenant):
        for n in range(15):
            _event(action="user.updated", target_id=str(n), actor_email=f"u{n}@alpha.test")
    assert queries() == small


# ------------------------------------------------------------------ nothing writes


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_write_methods_are_405_for_everyone_and_change_nothing(
    api_a, auditor_token, owner_token, tenant_a, log, method
) -> None:
    event = log["role"]
    before = _count(tenant_a)
    for token in (auditor_token, owner_token):
        for path in (AUDIT, f"{AUDIT}/{event.pk}"):
            response = api_a.call(method, path, {"action": "forged"}, token=token)
            assert error(response, 405)["code"] == "METHOD_NOT_ALLOWED", (method, path)
    with tenant_context(tenant_a.tenant):
        assert AuditEvent.objects.get(pk=event.pk).action == "role.created"
    assert _count(tenant_a) == before


# ------------------------------------------------------------------ tenancy


@pytest.mark.django_db
def test_another_tenants_rows_are_invisible(api_a, auditor_token, tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant):
        # An id tenant A's sequence has not reached, so a 404 can only mean "not here".
        foreign = _event(id=10**9, action="beta.only", target_id="99")
    with tenant_context(tenant_a.tenant):
        assert not AuditEvent.objects.filter(pk=foreign.pk).exists()
    assert _listed(api_a, auditor_token, action="beta.only") == []
    everything = api_a.call("get", AUDIT, {"page_size": 100}, token=auditor_token).json()["data"]
    assert "beta.only" not in {item["action"] for item in everything["items"]}
    assert error(api_a.call("get", f"{AUDIT}/{foreign.pk}", token=auditor_token), 404)
