"""GET/PATCH /api/v1/tenant: the tenant's owners manage its name and settings."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant


@pytest.mark.django_db
def test_owners_rename_their_tenant_and_admins_cannot(
    api_a, owner_token, staff_a, tenant_a
) -> None:
    mine = api_a.call("get", "/api/v1/tenant", token=owner_token)
    assert mine.status_code == 200 and mine.json()["data"]["slug"] == "alpha"
    renamed = api_a.call(
        "patch",
        "/api/v1/tenant",
        {"name": "Alpha Corp", "settings": {"rate_limit": "600/m"}},
        token=owner_token,
    )
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["data"]["name"] == "Alpha Corp"
    with tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.get(action="tenant.updated")
        assert event.changes["name"] == ["Tenant Alpha", "Alpha Corp"]
    admin_token = api_a.login("staff@alpha.test")[
        "access_token"
    ]  # the admin role: no tenant.manage
    refused = api_a.call("patch", "/api/v1/tenant", {"name": "Mine Now"}, token=admin_token)
    assert refused.status_code == 403
    for bad in ({"is_active": False}, {"name": ""}, {"settings": {"rate_limit": "lots"}}):
        response = api_a.call("patch", "/api/v1/tenant", bad, token=owner_token)
        assert response.status_code == 422, bad
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).name == "Alpha Corp"
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).is_active
