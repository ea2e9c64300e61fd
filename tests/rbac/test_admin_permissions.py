"""The tenant's Django admin asks the same permissions as the API: staff status alone opens
nothing, each page needs its API's permission held everywhere, and its writes go through the
services (so nobody escalates or changes a user who outranks them through the admin)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.admin_site import model_lives_in_current_schema
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import make_user
from tests.rbac.factories import grant_role


def _client(tenant_fixture, user: User) -> Client:
    client = Client()
    with tenant_context(tenant_fixture.tenant):
        client.force_login(user)
    return client


def _staff(tenant_fixture, name: str, permissions: list[str], organization=None) -> User:
    with tenant_context(tenant_fixture.tenant):
        user = make_user(email=f"{name}@alpha.test", username=name, is_staff=True)
        if permissions:
            grant_role(user, permissions, organization, name=f"{name} role")
        return user


@pytest.mark.django_db
def test_every_tenant_model_in_the_admin_names_the_permission_it_needs(tenant_a) -> None:
    from apps.rbac.backends import ADMIN_PERMISSIONS

    with tenant_context(tenant_a.tenant):
        shown = {
            model._meta.label_lower
            for model in admin.site._registry
            if model_lives_in_current_schema(model)
        }
    assert shown <= set(ADMIN_PERMISSIONS), sorted(shown - set(ADMIN_PERMISSIONS))


@pytest.mark.django_db
def test_staff_status_alone_opens_no_page(tenant_a) -> None:
    client = _client(tenant_a, _staff(tenant_a, "bare", []))
    host = {"HTTP_HOST": tenant_a.host}
    for page in ("/admin/audit/auditevent/", "/admin/accounts/user/", "/admin/rbac/role/"):
        assert client.get(page, **host).status_code == 403, page
    index = client.get("/admin/", **host)
    assert index.status_code == 200 and b"Audit" not in index.content


@pytest.mark.django_db
def test_the_audit_log_needs_audit_view(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        AuditEvent.objects.create(action="user.updated", target_type="user", target_id="1")
    host = {"HTTP_HOST": tenant_a.host}
    managers = _client(tenant_a, _staff(tenant_a, "manager", ["users.manage", "users.view"]))
    assert managers.get("/admin/audit/auditevent/", **host).status_code == 403
    auditors = _client(tenant_a, _staff(tenant_a, "auditor", ["audit.view"]))
    assert auditors.get("/admin/audit/auditevent/", **host).status_code == 200


@pytest.mark.django_db
def test_a_scoped_grant_opens_no_admin_page(tenant_a) -> None:
    """The admin lists every row, so it needs the permission everywhere."""
    from apps.organizations.services import organization_create

    with tenant_context(tenant_a.tenant):
        team = organization_create(actor=None, name="Team", type="team")
    user = _staff(tenant_a, "scoped", ["users.manage", "users.view"], organization=team)
    client = _client(tenant_a, user)
    assert client.get("/admin/accounts/user/", HTTP_HOST=tenant_a.host).status_code == 403


@pytest.mark.django_db
def test_django_groups_and_user_permissions_grant_nothing_in_a_tenant(tenant_a) -> None:
    from django.contrib.auth.models import Permission

    user = _staff(tenant_a, "djangoperms", [])
    with tenant_context(tenant_a.tenant):
        user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client = _client(tenant_a, user)
    assert client.get("/admin/audit/auditevent/", HTTP_HOST=tenant_a.host).status_code == 403


@pytest.mark.django_db
def test_an_admin_cannot_edit_an_owner_or_set_their_password_in_the_admin(
    tenant_a, staff_a
) -> None:
    owner = tenant_a.admin()
    client = _client(tenant_a, staff_a)  # the admin role: everything but tenant.manage
    host = {"HTTP_HOST": tenant_a.host}
    page = client.get(f"/admin/accounts/user/{owner.pk}/change/", **host)
    assert page.status_code == 200 and b'name="email"' not in page.content  # read-only
    posted = client.post(
        f"/admin/accounts/user/{owner.pk}/change/",
        {"email": "attacker@evil.test", "username": "admin", "is_active": "on"},
        **host,
    )
    assert posted.status_code == 403
    password = f"/admin/accounts/user/{owner.pk}/password/"
    assert client.get(password, **host).status_code == 403
    assert (
        client.post(
            password,
            {"password1": "x-new-Passphrase-9", "password2": "x-new-Passphrase-9"},
            **host,
        ).status_code
        == 403
    )
    with tenant_context(tenant_a.tenant):
        stored = User.objects.get(pk=owner.pk)
        assert stored.email == tenant_a.admin_email and stored.pending_email == ""
        assert stored.check_password("correct-horse-battery-staple")


@pytest.mark.django_db
def test_staff_cannot_make_themselves_superuser(tenant_a, staff_a) -> None:
    client = _client(tenant_a, staff_a)
    host = {"HTTP_HOST": tenant_a.host}
    client.post(
        f"/admin/accounts/user/{staff_a.pk}/change/",
        {
            "email": "staff@alpha.test",
            "username": "staffer",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
        },
        **host,
    )
    with tenant_context(tenant_a.tenant):
        assert not User.objects.get(pk=staff_a.pk).is_superuser


@pytest.mark.django_db
def test_an_e_mail_changed_in_the_admin_waits_for_its_confirmation(
    tenant_a, staff_a, member_a
) -> None:
    client = _client(tenant_a, staff_a)
    response = client.post(
        f"/admin/accounts/user/{member_a.pk}/change/",
        {"email": "elsewhere@alpha.test", "username": "member", "is_active": "on"},
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content[:3000]
    with tenant_context(tenant_a.tenant):
        stored = User.objects.get(pk=member_a.pk)
    assert (stored.email, stored.pending_email) == ("member@alpha.test", "elsewhere@alpha.test")


@pytest.mark.django_db
def test_role_managers_cannot_escalate_through_the_admin(tenant_a) -> None:
    user = _staff(tenant_a, "rolemaker", ["roles.manage", "roles.view"])
    client = _client(tenant_a, user)
    host = {"HTTP_HOST": tenant_a.host}
    made = client.post(
        "/admin/rbac/role/add/",
        {
            "name": "Crown",
            "description": "",
            "permissions": ["tenant.manage", "roles.manage"],
            "assignments-TOTAL_FORMS": "0",
            "assignments-INITIAL_FORMS": "0",
        },
        **host,
    )
    assert made.status_code == 302  # back to the form, with the refusal as a message
    with tenant_context(tenant_a.tenant):
        assert not Role.objects.filter(name="Crown").exists()
        owner = Role.objects.get(system_key="owner")
    granted = client.post(
        "/admin/rbac/roleassignment/add/",
        {"user": user.pk, "role": owner.pk, "organization": ""},
        **host,
    )
    assert granted.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not RoleAssignment.objects.filter(user=user, role=owner).exists()
