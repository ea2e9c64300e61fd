"""The audit log in the tenant's admin: readable by staff, never added to, edited or deleted."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent

LIST = "/admin/audit/auditevent/"


@pytest.fixture
def superuser_client(tenant_a) -> Client:
    """The tenant's first admin: staff and superuser of this schema."""
    return tenant_a.admin_client()


@pytest.fixture
def event(tenant_a) -> AuditEvent:
    with tenant_context(tenant_a.tenant):
        return AuditEvent.objects.create(
            action="user.updated",
            target_type="user",
            target_id="4242",
            actor_email="someone@alpha.test",
            changes={"full_name": ["A", "B"]},
            request_id="req-admin-1",
        )


def _unchanged(tenant_fixture, event: AuditEvent) -> bool:
    with tenant_context(tenant_fixture.tenant):
        row = AuditEvent.objects.filter(pk=event.pk).first()
    return row is not None and (row.action, row.changes) == (event.action, event.changes)


@pytest.mark.django_db
def test_staff_list_search_filter_and_open_rows(superuser_client, tenant_a, event) -> None:
    host = {"HTTP_HOST": tenant_a.host}
    listing = superuser_client.get(LIST, **host)
    assert listing.status_code == 200
    assert b"4242" in listing.content
    assert b"delete_selected" not in listing.content and b'name="action"' not in listing.content
    assert f"{LIST}add/".encode() not in listing.content  # no "Add audit event" link

    found = superuser_client.get(LIST, {"q": "req-admin-1"}, **host)
    assert found.status_code == 200 and b"4242" in found.content
    assert b"4242" not in superuser_client.get(LIST, {"q": "nobody-here"}, **host).content
    filtered = superuser_client.get(LIST, {"action": "user.updated"}, **host)
    assert filtered.status_code == 200 and b"4242" in filtered.content
    year = event.occurred_at.year
    assert superuser_client.get(LIST, {"occurred_at__year": year}, **host).status_code == 200

    detail = superuser_client.get(f"{LIST}{event.pk}/change/", **host)
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content and b"4242" in detail.content


@pytest.mark.django_db
def test_nobody_can_add_change_or_delete_rows(superuser_client, tenant_a, event) -> None:
    host = {"HTTP_HOST": tenant_a.host}
    assert superuser_client.get(f"{LIST}add/", **host).status_code == 403
    added = superuser_client.post(
        f"{LIST}add/", {"action": "forged", "target_type": "user"}, **host
    )
    assert added.status_code == 403

    changed = superuser_client.post(
        f"{LIST}{event.pk}/change/",
        {"action": "forged", "target_type": "user", "target_id": "1", "changes": "{}"},
        **host,
    )
    assert changed.status_code == 403

    assert superuser_client.get(f"{LIST}{event.pk}/delete/", **host).status_code == 403
    assert (
        superuser_client.post(f"{LIST}{event.pk}/delete/", {"post": "yes"}, **host).status_code
        == 403
    )

    bulk = superuser_client.post(
        LIST,
        {"action": "delete_selected", "_selected_action": [str(event.pk)], "post": "yes"},
        **host,
    )
    assert bulk.status_code in (200, 302)
    assert _unchanged(tenant_a, event)
    with tenant_context(tenant_a.tenant):
        assert not AuditEvent.objects.filter(action="forged").exists()


@pytest.mark.django_db
def test_staff_who_are_not_superusers_may_read(tenant_a, staff_a, event) -> None:
    client = tenant_a.admin_client(staff_a)
    assert client.get(LIST, HTTP_HOST=tenant_a.host).status_code == 200
    assert client.get(f"{LIST}{event.pk}/change/", HTTP_HOST=tenant_a.host).status_code == 200
    assert client.get(f"{LIST}add/", HTTP_HOST=tenant_a.host).status_code == 403


@pytest.mark.django_db
def test_members_who_are_not_staff_are_sent_to_the_login(tenant_a, member_a, event) -> None:
    client = tenant_a.admin_client(member_a)
    response = client.get(LIST, HTTP_HOST=tenant_a.host)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
