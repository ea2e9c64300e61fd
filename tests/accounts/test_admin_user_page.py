"""The user's admin page shows their roles, organizations and live sessions, and none of
Django's groups or per-user permissions (roles take their place)."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.organizations.models import Membership
from apps.organizations.services import organization_create
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD, make_user


@pytest.mark.django_db
def test_the_user_page_shows_roles_organizations_and_sessions(tenant_a, api) -> None:
    with tenant_context(tenant_a.tenant):
        member = make_user(email="member@alpha.test", username="member")
        sales = organization_create(actor=None, name="Sales", type="department", parent_id=None)
        RoleAssignment.objects.create(
            user=member, role=Role.objects.get(system_key="admin"), organization=sales
        )
        Membership.objects.create(user=member, organization=sales, title="Head of sales")
    Api(api, tenant_a.host).login("member@alpha.test", PASSWORD, HTTP_USER_AGENT="TestBrowser/1")

    page = tenant_a.admin_client().get(
        f"/admin/accounts/user/{member.pk}/change/", HTTP_HOST=tenant_a.host
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Roles, organizations and sessions" in html
    assert (
        "admin</a>" in html
        and f'href="/admin/organizations/organization/{sales.pk}/change/"' in html
    )
    assert "Head of sales" in html
    assert "TestBrowser/1" in html and "/admin/accounts/session/" in html
    assert f"/admin/rbac/roleassignment/add/?user={member.pk}" in html
    for hidden in ('name="groups"', 'name="user_permissions"', "Groups:", "User permissions:"):
        assert hidden not in html


@pytest.mark.django_db
def test_an_operators_page_in_public_shows_sessions_only(operator) -> None:
    client = Client()
    client.force_login(operator)
    other = make_user(email="other-op@localhost", username="otherop", is_staff=True)
    page = client.get(f"/admin/accounts/user/{other.pk}/change/", HTTP_HOST="localhost")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No active sessions." in html
    assert "field-roles" not in html and "field-organizations" not in html
    assert 'name="groups"' not in html and 'name="user_permissions"' not in html


@pytest.mark.django_db
def test_each_part_shows_only_to_who_may_read_its_own_page(tenant_a, api) -> None:
    # users.view opens the user page; the sessions (addresses, devices) need users.manage,
    # the roles roles.view, the organizations organizations.view.
    with tenant_context(tenant_a.tenant):
        member = make_user(email="member@alpha.test", username="member")
        viewer = make_user(email="viewer@alpha.test", username="viewer", is_staff=True)
        role = Role.objects.create(name="Directory", permissions=["users.view", "roles.view"])
        RoleAssignment.objects.create(user=viewer, role=role)
    Api(api, tenant_a.host).login("member@alpha.test", PASSWORD, HTTP_USER_AGENT="TestBrowser/1")
    page = tenant_a.admin_client(viewer).get(
        f"/admin/accounts/user/{member.pk}/change/", HTTP_HOST=tenant_a.host
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "field-roles" in html
    assert "field-sessions" not in html and "TestBrowser/1" not in html
    assert "field-organizations" not in html
