"""The tenant admin shows roles and assignments, keeps system roles and the last owner."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.rbac.models import Role, RoleAssignment


@pytest.mark.django_db
def test_roles_are_listed_with_permissions_and_system_roles_cannot_be_deleted(tenant_a) -> None:
    client = tenant_a.admin_client()
    listing = client.get("/admin/rbac/role/", HTTP_HOST=tenant_a.host)
    assert listing.status_code == 200
    assert b"organizations.view" in listing.content and b"owner" in listing.content
    with tenant_context(tenant_a.tenant):
        owner = Role.objects.get(system_key="owner")
    page = client.get(f"/admin/rbac/role/{owner.pk}/delete/", HTTP_HOST=tenant_a.host)
    assert page.status_code == 403
    narrowed = client.post(
        f"/admin/rbac/role/{owner.pk}/change/",
        {
            "name": "owner",
            "description": "",
            "permissions": ["users.view"],
            "assignments-TOTAL_FORMS": "0",
            "assignments-INITIAL_FORMS": "0",
        },
        HTTP_HOST=tenant_a.host,
    )
    assert narrowed.status_code == 200 and b"always holds every permission" in narrowed.content


@pytest.mark.django_db
def test_a_role_made_in_the_admin_is_audited(tenant_a) -> None:
    client = tenant_a.admin_client()
    response = client.post(
        "/admin/rbac/role/add/",
        {
            "name": "Auditors",
            "description": "",
            "permissions": ["audit.view"],
            "assignments-TOTAL_FORMS": "0",
            "assignments-INITIAL_FORMS": "0",
        },
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content[:2000]
    with tenant_context(tenant_a.tenant):
        role = Role.objects.get(name="Auditors")
        assert role.permissions == ["audit.view"]
        event = AuditEvent.objects.get(action="role.created", target_id=str(role.pk))
        assert event.actor_email == tenant_a.admin_email


@pytest.mark.django_db
def test_the_last_owner_cannot_be_removed_in_the_admin(tenant_a) -> None:
    client = tenant_a.admin_client()
    with tenant_context(tenant_a.tenant):
        owner = RoleAssignment.objects.get(role__system_key="owner")
    response = client.post(
        f"/admin/rbac/roleassignment/{owner.pk}/delete/", {"post": "yes"}, HTTP_HOST=tenant_a.host
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert RoleAssignment.objects.filter(pk=owner.pk).exists()
