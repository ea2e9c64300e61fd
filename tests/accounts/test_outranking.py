"""Nobody changes a user who holds a permission they lack, and an e-mail change waits for the
new address to confirm it: the owner takeover an attacker ran against the platform, step by
step, and the rules that now stop it."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.organizations.models import Membership, Organization
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import PASSWORD, make_user
from tests.conftest import ADMIN_PASSWORD

USERS = "/api/v1/users"
CONFIRM = "/api/v1/auth/email/confirm"


def _role(name: str, permissions: list[str]) -> Role:
    return Role.objects.create(name=name, permissions=permissions)


@pytest.fixture
def division(tenant_a) -> Organization:
    from apps.organizations.services import organization_create

    with tenant_context(tenant_a.tenant):
        return organization_create(actor=None, name="Division", type="department")


@pytest.fixture
def scoped_manager(tenant_a, division) -> User:
    """users.manage (and users.view) in one organization's subtree, nothing else."""
    with tenant_context(tenant_a.tenant):
        division.refresh_from_db()
        user = make_user(email="scoped@alpha.test", username="scoped")
        role = _role("division managers", ["users.manage", "users.view"])
        RoleAssignment.objects.create(user=user, role=role, organization=division)
        return user


@pytest.fixture
def owner_in_division(tenant_a, division) -> User:
    """The tenant's first admin (an owner), made a member of the division."""
    with tenant_context(tenant_a.tenant):
        owner = User.objects.get(email=tenant_a.admin_email)
        Membership.objects.create(organization=division, user=owner)
        return owner


def _token(api_a, email: str, password: str = PASSWORD) -> str:
    return str(api_a.login(email, password)["access_token"])


def _link_token(message) -> str:
    match = re.search(r"token=([\w.:-]+)", message.body)
    assert match, message.body
    return match.group(1)


def _refused(response, fragment: str = "permissions you lack") -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"]["code"] == "FORBIDDEN"
    assert fragment in body["error"]["message"]


# ------------------------------------------------------------------ the takeover, refused


@pytest.mark.django_db
def test_a_scoped_user_manager_cannot_touch_an_owner_in_their_subtree(
    api_a, tenant_a, scoped_manager, owner_in_division
) -> None:
    token = _token(api_a, "scoped@alpha.test")
    url = f"{USERS}/{owner_in_division.pk}"
    # The attack: the owner's address becomes the attacker's, then a reset link goes there.
    _refused(api_a.call("patch", url, {"email": "attacker@evil.test"}, token=token))
    for change in ({"is_active": False}, {"full_name": "Renamed"}, {"is_staff": False}):
        _refused(api_a.call("patch", url, change, token=token))
    _refused(api_a.call("delete", url, token=token))
    with tenant_context(tenant_a.tenant):
        owner = User.objects.get(pk=owner_in_division.pk)
        assert (owner.email, owner.pending_email) == (tenant_a.admin_email, "")
        assert owner.is_active and not owner.is_deleted
        assert not AuditEvent.objects.filter(target_type="user", target_id=str(owner.pk)).filter(
            action__in=["user.updated", "user.deleted", "user.email_change_requested"]
        )
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_admin_role_cannot_change_deactivate_delete_or_restore_an_owner(
    api_a, tenant_a, staff_a, member_a
) -> None:
    with tenant_context(tenant_a.tenant):
        RoleAssignment.objects.create(user=member_a, role=Role.objects.get(system_key="owner"))
    owner = tenant_a.admin()
    token = _token(api_a, "staff@alpha.test")  # the admin role: everything but tenant.manage
    for target in (owner, member_a):
        url = f"{USERS}/{target.pk}"
        _refused(api_a.call("patch", url, {"email": "mine@alpha.test"}, token=token))
        _refused(api_a.call("patch", url, {"is_active": False}, token=token))
        _refused(api_a.call("delete", url, token=token))
    with tenant_context(tenant_a.tenant):
        member_a.is_deleted = True
        member_a.save(update_fields=["is_deleted"])
    _refused(api_a.call("post", f"{USERS}/{member_a.pk}/restore", token=token), "tenant.manage")
    with tenant_context(tenant_a.tenant):
        assert User.objects.get(pk=owner.pk).is_active


@pytest.mark.django_db
def test_an_owner_manages_another_owner(api_a, tenant_a, member_a) -> None:
    with tenant_context(tenant_a.tenant):
        RoleAssignment.objects.create(user=member_a, role=Role.objects.get(system_key="owner"))
    token = _token(api_a, tenant_a.admin_email, ADMIN_PASSWORD)
    response = api_a.call("patch", f"{USERS}/{member_a.pk}", {"is_active": False}, token=token)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["is_active"] is False


@pytest.mark.django_db
def test_a_scoped_manager_still_manages_the_plain_members_of_their_subtree(
    api_a, tenant_a, scoped_manager, division, member_a
) -> None:
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=division, user=member_a)
    token = _token(api_a, "scoped@alpha.test")
    response = api_a.call("patch", f"{USERS}/{member_a.pk}", {"full_name": "Mem Ber"}, token=token)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["full_name"] == "Mem Ber"


@pytest.mark.django_db
def test_a_scoped_manager_cannot_manage_someone_with_a_wider_grant_of_their_own_permission(
    api_a, tenant_a, scoped_manager, division, member_a
) -> None:
    """member_a holds users.view everywhere; the manager only in the division."""
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=division, user=member_a)
        RoleAssignment.objects.create(user=member_a, role=_role("viewers", ["users.view"]))
    token = _token(api_a, "scoped@alpha.test")
    _refused(api_a.call("patch", f"{USERS}/{member_a.pk}", {"full_name": "X"}, token=token))


@pytest.mark.django_db
def test_only_an_unscoped_user_manager_sets_the_staff_flag(
    api_a, tenant_a, scoped_manager, division, member_a
) -> None:
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=division, user=member_a)
    token = _token(api_a, "scoped@alpha.test")
    response = api_a.call("patch", f"{USERS}/{member_a.pk}", {"is_staff": True}, token=token)
    _refused(response, "users.manage everywhere")
    with tenant_context(tenant_a.tenant):
        assert not User.objects.get(pk=member_a.pk).is_staff


# ------------------------------------------------------------------ e-mail changes


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_new_address_takes_effect_only_once_it_confirms(
    api_a, tenant_a, staff_a, member_a, django_capture_on_commit_callbacks
) -> None:
    token = _token(api_a, "staff@alpha.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.call(
            "patch", f"{USERS}/{member_a.pk}", {"email": "New@Alpha.test"}, token=token
        )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["email"], data["pending_email"]) == ("member@alpha.test", "new@alpha.test")

    # The new address gets the link, the old one is told.
    assert sorted(m.to[0] for m in mail.outbox) == ["member@alpha.test", "new@alpha.test"]
    link_mail = next(m for m in mail.outbox if m.to == ["new@alpha.test"])
    notice = next(m for m in mail.outbox if m.to == ["member@alpha.test"])
    assert "new@alpha.test" in notice.body and "token=" not in notice.body
    link = _link_token(link_mail)

    # Until then nothing changed: the old address still signs in, the new one does not.
    api_a.login("member@alpha.test")
    refused = api_a.call(
        "post", "/api/v1/auth/login", {"email": "new@alpha.test", "password": PASSWORD}
    )
    assert refused.status_code == 401

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api_a.call("post", CONFIRM, {"token": link})
    assert confirmed.status_code == 200, confirmed.content
    api_a.login("new@alpha.test")
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(pk=member_a.pk)
        assert (user.email, user.pending_email) == ("new@alpha.test", "")
        actions = list(
            AuditEvent.objects.filter(target_id=str(user.pk)).values_list("action", flat=True)
        )
        assert {"user.email_change_requested", "user.email_changed"} <= set(actions)
    assert [m.to for m in mail.outbox] == [["member@alpha.test"]]
    assert "new@alpha.test" in mail.outbox[0].body

    again = api_a.call("post", CONFIRM, {"token": link})
    assert again.status_code == 422 and "token" in again.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_newer_request_voids_the_earlier_link(
    api_a, tenant_a, staff_a, member_a, django_capture_on_commit_callbacks
) -> None:
    token = _token(api_a, "staff@alpha.test")
    links = {}
    for address in ("first@alpha.test", "second@alpha.test"):
        with django_capture_on_commit_callbacks(execute=True):
            api_a.call("patch", f"{USERS}/{member_a.pk}", {"email": address}, token=token)
        links[address] = _link_token(next(m for m in mail.outbox if m.to == [address]))
    stale = api_a.call("post", CONFIRM, {"token": links["first@alpha.test"]})
    assert stale.status_code == 422
    assert api_a.call("post", CONFIRM, {"token": links["second@alpha.test"]}).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert User.objects.get(pk=member_a.pk).email == "second@alpha.test"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_link_works_only_in_its_tenant_and_only_in_time(
    api_a, api_b, tenant_a, tenant_b, staff_a, member_a, django_capture_on_commit_callbacks
) -> None:
    token = _token(api_a, "staff@alpha.test")
    with django_capture_on_commit_callbacks(execute=True):
        api_a.call("patch", f"{USERS}/{member_a.pk}", {"email": "moved@alpha.test"}, token=token)
    link = _link_token(next(m for m in mail.outbox if m.to == ["moved@alpha.test"]))
    # The same user id exists in the other tenant: the link names tenant A's request only.
    with tenant_context(tenant_b.tenant):
        make_user(email="member@beta.test", username="member", pk=member_a.pk)
    assert api_b.call("post", CONFIRM, {"token": link}).status_code == 422
    assert api_a.call("post", CONFIRM, {"token": link[:-2] + "xx"}).status_code == 422
    with override_settings(EMAIL_CHANGE_TIMEOUT_MINUTES=-1):
        assert api_a.call("post", CONFIRM, {"token": link}).status_code == 422
    with tenant_context(tenant_a.tenant):
        assert User.objects.get(pk=member_a.pk).email == "member@alpha.test"
    assert api_a.call("post", CONFIRM, {"token": link}).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_an_address_taken_before_the_confirmation_is_a_409(
    api_a, tenant_a, staff_a, member_a, django_capture_on_commit_callbacks
) -> None:
    token = _token(api_a, "staff@alpha.test")
    with django_capture_on_commit_callbacks(execute=True):
        api_a.call("patch", f"{USERS}/{member_a.pk}", {"email": "wanted@alpha.test"}, token=token)
    link = _link_token(next(m for m in mail.outbox if m.to == ["wanted@alpha.test"]))
    with tenant_context(tenant_a.tenant):
        make_user(email="wanted@alpha.test", username="wanted")
    response = api_a.call("post", CONFIRM, {"token": link})
    assert response.status_code == 409 and response.json()["error"]["code"] == "CONFLICT"


# ------------------------------------------------------------------ memberships


@pytest.mark.django_db
def test_an_organization_manager_cannot_pull_an_admin_into_their_subtree(
    api_a, tenant_a, division, staff_a
) -> None:
    with tenant_context(tenant_a.tenant):
        division.refresh_from_db()
        lead = make_user(email="lead@alpha.test", username="lead")
        role = _role("division leads", ["organizations.manage", "organizations.view"])
        RoleAssignment.objects.create(user=lead, role=role, organization=division)
    token = _token(api_a, "lead@alpha.test")
    response = api_a.call(
        "post",
        f"/api/v1/organizations/{division.pk}/members",
        {"user_id": staff_a.pk},
        token=token,
    )
    _refused(response, "users you manage")
    with tenant_context(tenant_a.tenant):
        assert not Membership.objects.filter(user=staff_a).exists()


@pytest.mark.django_db
def test_nobody_takes_a_role_from_a_user_who_outranks_them(api_a, tenant_a, staff_a) -> None:
    owner = tenant_a.admin()
    with tenant_context(tenant_a.tenant):
        member_role = Role.objects.get(system_key="member")
        assignment, _ = RoleAssignment.objects.get_or_create(user=owner, role=member_role)
    token = _token(api_a, "staff@alpha.test")
    response = api_a.call("delete", f"{USERS}/{owner.pk}/roles/{assignment.pk}", token=token)
    _refused(response)
    with tenant_context(tenant_a.tenant):
        assert RoleAssignment.objects.filter(pk=assignment.pk).exists()
