"""Roles, assignments, scoped grants and the escalation rules, through the API."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.errors import ConflictError
from apps.rbac.catalogue import ALL_CODENAMES
from apps.rbac.models import Role, RoleAssignment
from apps.rbac.services import role_unassign
from tests.organizations.factories import org_create

ROLES = "/api/v1/roles"
USERS = "/api/v1/users"


def token_of(api, email: str) -> str:
    return str(api.login(email)["access_token"])


def role_id(tenant, key: str) -> int:
    with tenant_context(tenant.tenant):
        return Role.objects.get(system_key=key).pk


# ------------------------------------------------------------------ catalogue and system roles


@pytest.mark.django_db
def test_the_first_admin_owns_the_tenant_and_holds_everything(api_a, owner_token) -> None:
    mine = api_a.call("get", f"{USERS}/me/permissions", token=owner_token).json()["data"]
    assert {p["codename"] for p in mine["permissions"]} == ALL_CODENAMES
    assert all(p["everywhere"] for p in mine["permissions"])
    assert sorted(a["role"]["name"] for a in mine["roles"]) == ["member", "owner"]
    catalogue = api_a.call("get", "/api/v1/permissions", token=owner_token).json()["data"]
    assert {p["codename"] for p in catalogue} == ALL_CODENAMES
    roles = api_a.call("get", ROLES, token=owner_token).json()["data"]
    assert {r["system_key"] for r in roles["items"]} >= {"owner", "admin", "member"}


@pytest.mark.django_db
def test_system_roles_cannot_be_deleted_renamed_or_the_owner_narrowed(
    api_a, owner_token, tenant_a
) -> None:
    for key in ("owner", "admin", "member"):
        response = api_a.call("delete", f"{ROLES}/{role_id(tenant_a, key)}", token=owner_token)
        assert response.status_code == 409
    owner = role_id(tenant_a, "owner")
    narrowed = api_a.call(
        "patch", f"{ROLES}/{owner}", {"permissions": ["users.view"]}, token=owner_token
    )
    assert narrowed.status_code == 422 and "permissions" in narrowed.json()["error"]["details"]
    renamed = api_a.call("patch", f"{ROLES}/{owner}", {"name": "boss"}, token=owner_token)
    assert renamed.status_code == 422
    with tenant_context(tenant_a.tenant):
        assert Role.objects.filter(system_key__isnull=False).count() == 3
        assert Role.objects.get(pk=owner).name == "owner"


# ------------------------------------------------------------------ role CRUD


@pytest.mark.django_db
def test_roles_are_created_edited_and_deleted_with_audit_rows(api_a, owner_token, tenant_a) -> None:
    created = api_a.call(
        "post",
        ROLES,
        {
            "name": "Support",
            "description": "Front line",
            "permissions": ["users.view", "users.view"],
        },
        token=owner_token,
    )
    assert created.status_code == 201, created.content
    role = created.json()["data"]
    assert role["permissions"] == ["users.view"] and role["is_system"] is False
    assert (
        api_a.call(
            "post", ROLES, {"name": "support", "permissions": []}, token=owner_token
        ).status_code
        == 409
    )
    bad = api_a.call("post", ROLES, {"name": "X", "permissions": ["users.fly"]}, token=owner_token)
    assert bad.status_code == 422 and "permissions" in bad.json()["error"]["details"]
    unknown_field = api_a.call(
        "post", ROLES, {"name": "Y", "permissions": [], "is_system": True}, token=owner_token
    )
    assert unknown_field.status_code == 422
    edited = api_a.call(
        "patch",
        f"{ROLES}/{role['id']}",
        {"permissions": ["users.view", "users.manage"]},
        token=owner_token,
    )
    assert edited.json()["data"]["permissions"] == ["users.manage", "users.view"]
    assert api_a.call("delete", f"{ROLES}/{role['id']}", token=owner_token).status_code == 204
    assert api_a.call("get", f"{ROLES}/{role['id']}", token=owner_token).status_code == 404
    with tenant_context(tenant_a.tenant):
        actions = list(
            AuditEvent.objects.filter(target_type="role", target_id=str(role["id"]))
            .order_by("id")
            .values_list("action", flat=True)
        )
        assert actions == ["role.created", "role.updated", "role.deleted"]
        updated = AuditEvent.objects.get(action="role.updated", target_id=str(role["id"]))
        assert updated.changes == {"permissions": [["users.view"], ["users.manage", "users.view"]]}
        assert updated.actor is not None and updated.actor.email == tenant_a.admin_email


# ------------------------------------------------------------------ escalation


@pytest.mark.django_db
def test_nobody_grants_what_they_lack(api_a, grant, person, tenant_a) -> None:
    manager = person("manager")
    target = person("target")
    grant(manager, ["roles.view", "roles.manage", "users.view"])
    token = token_of(api_a, "manager@alpha.test")
    # A role with a permission the manager lacks: refused to create, and to edit into one.
    wider = api_a.call(
        "post", ROLES, {"name": "Wider", "permissions": ["users.manage"]}, token=token
    )
    assert wider.status_code == 403 and "users.manage" in wider.json()["error"]["message"]
    narrow = api_a.call(
        "post", ROLES, {"name": "Narrow", "permissions": ["users.view"]}, token=token
    )
    assert narrow.status_code == 201
    narrow_id = narrow.json()["data"]["id"]
    widen = api_a.call(
        "patch", f"{ROLES}/{narrow_id}", {"permissions": ["audit.view"]}, token=token
    )
    assert widen.status_code == 403
    # Granting: a role holding more than the manager, the admin role, the owner role.
    for key in ("admin", "owner"):
        response = api_a.call(
            "post", f"{USERS}/{target.pk}/roles", {"role_id": role_id(tenant_a, key)}, token=token
        )
        assert response.status_code == 403, key
    ok = api_a.call("post", f"{USERS}/{target.pk}/roles", {"role_id": narrow_id}, token=token)
    assert ok.status_code == 201
    # Their own roles: neither add nor remove.
    own = api_a.call("post", f"{USERS}/{manager.pk}/roles", {"role_id": narrow_id}, token=token)
    assert own.status_code == 403 and "own roles" in own.json()["error"]["message"]
    with tenant_context(tenant_a.tenant):
        mine = RoleAssignment.objects.get(user=manager)
        assert RoleAssignment.objects.filter(user=target).count() == 1
        assert not RoleAssignment.objects.filter(user=manager, role_id=narrow_id).exists()
    removal = api_a.call("delete", f"{USERS}/{manager.pk}/roles/{mine.pk}", token=token)
    assert removal.status_code == 403


@pytest.mark.django_db
def test_an_admin_cannot_touch_owners(api_a, staff_a, tenant_a) -> None:
    token = token_of(api_a, "staff@alpha.test")
    with tenant_context(tenant_a.tenant):
        owner_assignment = RoleAssignment.objects.get(
            role__system_key="owner", user__email=tenant_a.admin_email
        )
    response = api_a.call(
        "delete", f"{USERS}/{owner_assignment.user_id}/roles/{owner_assignment.pk}", token=token
    )
    assert response.status_code == 403
    with tenant_context(tenant_a.tenant):
        assert RoleAssignment.objects.filter(pk=owner_assignment.pk).exists()


@pytest.mark.django_db
def test_the_last_owner_stays(api_a, grant, person, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        owner = RoleAssignment.objects.get(role__system_key="owner")
    deputy = person("deputy")
    grant(deputy, sorted(ALL_CODENAMES))  # everything, but not the owner role itself
    with tenant_context(tenant_a.tenant):
        with pytest.raises(ConflictError):
            role_unassign(actor=deputy, assignment=owner)
        assert RoleAssignment.objects.filter(pk=owner.pk).exists()
    # With a second owner, the first can be removed (by someone else).
    token = token_of(api_a, "deputy@alpha.test")
    other = person("other")
    made = api_a.call(
        "post", f"{USERS}/{other.pk}/roles", {"role_id": role_id(tenant_a, "owner")}, token=token
    )
    assert made.status_code == 201
    removed = api_a.call("delete", f"{USERS}/{owner.user_id}/roles/{owner.pk}", token=token)
    assert removed.status_code == 204


@pytest.mark.django_db
def test_owner_cannot_be_scoped_and_bad_ids_are_422_or_404(
    api_a, owner_token, person, tenant_a
) -> None:
    target = person("target")
    with tenant_context(tenant_a.tenant):
        org = org_create("Sales")
    scoped_owner = api_a.call(
        "post",
        f"{USERS}/{target.pk}/roles",
        {"role_id": role_id(tenant_a, "owner"), "organization_id": org.pk},
        token=owner_token,
    )
    assert scoped_owner.status_code == 422
    assert "organization_id" in scoped_owner.json()["error"]["details"]
    no_role = api_a.call(
        "post", f"{USERS}/{target.pk}/roles", {"role_id": 999999}, token=owner_token
    )
    assert no_role.status_code == 422 and "role_id" in no_role.json()["error"]["details"]
    no_org = api_a.call(
        "post",
        f"{USERS}/{target.pk}/roles",
        {"role_id": role_id(tenant_a, "member"), "organization_id": 999999},
        token=owner_token,
    )
    assert no_org.status_code == 422
    no_user = api_a.call(
        "post", f"{USERS}/999999/roles", {"role_id": role_id(tenant_a, "member")}, token=owner_token
    )
    assert no_user.status_code == 404
    twice = [
        api_a.call(
            "post",
            f"{USERS}/{target.pk}/roles",
            {"role_id": role_id(tenant_a, "member")},
            token=owner_token,
        ).status_code
        for _ in range(2)
    ]
    assert twice == [201, 409]
    with tenant_context(tenant_a.tenant):
        assert RoleAssignment.objects.filter(user=target).count() == 1


# ------------------------------------------------------------------ taking effect at once


@pytest.mark.django_db
def test_a_revoked_permission_stops_the_very_next_request(
    api_a, owner_token, grant, person, tenant_a
) -> None:
    viewer = person("viewer")
    assignment = grant(viewer, ["users.view"])
    token = token_of(api_a, "viewer@alpha.test")
    assert api_a.call("get", USERS, token=token).status_code == 200
    assert api_a.call("get", USERS, token=token).status_code == 200  # now from the cache
    gone = api_a.call("delete", f"{USERS}/{viewer.pk}/roles/{assignment.pk}", token=owner_token)
    assert gone.status_code == 204
    refused = api_a.call("get", USERS, token=token)  # same, still valid access token
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    # And a role edited to lose a permission takes it from everyone holding it.
    again = grant(viewer, ["users.view", "roles.view"])
    assert api_a.call("get", USERS, token=token).status_code == 200
    edited = api_a.call(
        "patch", f"{ROLES}/{again.role_id}", {"permissions": ["roles.view"]}, token=owner_token
    )
    assert edited.status_code == 200
    assert api_a.call("get", USERS, token=token).status_code == 403
    assert api_a.call("get", ROLES, token=token).status_code == 200


@pytest.mark.django_db
def test_a_permission_check_costs_no_extra_redis_round_trip(
    api_a, grant, person, redis_commands
) -> None:
    viewer = person("viewer")
    grant(viewer, ["roles.view"])
    token = token_of(api_a, "viewer@alpha.test")
    api_a.call("get", ROLES, token=token)  # warm: user, session and grants cached
    commands = redis_commands
    commands.clear()
    assert api_a.call("get", ROLES, token=token).status_code == 200
    assert commands == ["EVALSHA"]


@pytest.mark.django_db
def test_a_sign_up_keeps_everyone_elses_cached_grants(
    api_a, owner_token, grant, person, tenant_a, monkeypatch
) -> None:
    from django_redis import get_redis_connection

    from apps.rbac.grants import generation_key

    viewer = person("viewer")
    grant(viewer, ["roles.view"])
    token = token_of(api_a, "viewer@alpha.test")
    api_a.call("get", ROLES, token=token)  # the viewer's grants are cached now
    with tenant_context(tenant_a.tenant):
        generation = get_redis_connection("default").get(generation_key())
    created = api_a.call(
        "post",
        USERS,
        {"email": "new@alpha.test", "username": "newcomer", "password": "a-Long-passw0rd!",
         "password_confirm": "a-Long-passw0rd!"},
        token=owner_token,
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    with tenant_context(tenant_a.tenant):
        assert get_redis_connection("default").get(generation_key()) == generation
        newcomer = RoleAssignment.objects.get(user_id=created.json()["data"]["id"])
        assert newcomer.role.system_key == "member"
    # The viewer's next request is answered from the cache: no query for its grants.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert api_a.call("get", ROLES, token=token).status_code == 200
    assert not [q for q in queries.captured_queries if "rbac_roleassignment" in q["sql"]]
    # And the newcomer holds the member role's permissions at once.
    newcomer_token = str(api_a.login("new@alpha.test", "a-Long-passw0rd!")["access_token"])
    mine = api_a.call("get", f"{USERS}/me/permissions", token=newcomer_token)
    assert mine.status_code == 200
    assert [a["role"]["name"] for a in mine.json()["data"]["roles"]] == ["member"]


# ------------------------------------------------------------------ scoped grants


@pytest.fixture
def branches(tenant_a, person):
    """company > {sales > emea, engineering}; alice in emea, bob in engineering."""
    from apps.organizations.models import Membership

    alice, bob = person("alice"), person("bob")
    with tenant_context(tenant_a.tenant):
        company = org_create("Company")
        sales = org_create("Sales", company)
        emea = org_create("EMEA", sales)
        engineering = org_create("Engineering", company)
        Membership.objects.create(organization=emea, user=alice)
        Membership.objects.create(organization=engineering, user=bob)
    return {
        "company": company,
        "sales": sales,
        "emea": emea,
        "eng": engineering,
        "alice": alice,
        "bob": bob,
    }


@pytest.mark.django_db
def test_scoped_grants_reach_the_subtree_and_nothing_else(
    api_a, api_b, grant, person, branches
) -> None:
    lead = person("lead")
    grant(lead, ["users.view", "users.manage"], organization=branches["sales"])
    token = token_of(api_a, "lead@alpha.test")
    listed = api_a.call("get", USERS, token=token).json()["data"]
    assert [u["email"] for u in listed["items"]] == ["alice@alpha.test"]
    alice, bob = branches["alice"], branches["bob"]
    assert api_a.call("get", f"{USERS}/{alice.pk}", token=token).status_code == 200
    renamed = api_a.call("patch", f"{USERS}/{alice.pk}", {"full_name": "Alice A"}, token=token)
    assert renamed.status_code == 200
    # Another branch: as if it did not exist.
    assert api_a.call("get", f"{USERS}/{bob.pk}", token=token).status_code == 404
    assert (
        api_a.call("patch", f"{USERS}/{bob.pk}", {"full_name": "x"}, token=token).status_code == 404
    )
    assert api_a.call("delete", f"{USERS}/{bob.pk}", token=token).status_code == 404
    # Creating users and restoring deleted ones need the grant everywhere.
    assert (
        api_a.call(
            "post",
            USERS,
            {
                "email": "n@alpha.test",
                "username": "n",
                "password": "a-good-long-passphrase",
                "password_confirm": "a-good-long-passphrase",
            },
            token=token,
        ).status_code
        == 403
    )
    # A token from this tenant is no good on another, whatever the ids.
    assert api_b.call("get", f"{USERS}/{alice.pk}", token=token).status_code == 401
    mine = api_a.call("get", f"{USERS}/me/permissions", token=token).json()["data"]
    by_code = {p["codename"]: p for p in mine["permissions"]}
    assert by_code["users.view"]["everywhere"] is False
    assert [o["name"] for o in by_code["users.view"]["organizations"]] == ["Sales"]


@pytest.mark.django_db
def test_seeing_is_not_managing(api_a, grant, person, branches) -> None:
    lead = person("lead")
    grant(lead, ["users.view"], organization=branches["company"])
    grant(lead, ["users.manage"], organization=branches["eng"])
    token = token_of(api_a, "lead@alpha.test")
    alice, bob = branches["alice"], branches["bob"]
    assert (
        api_a.call("patch", f"{USERS}/{alice.pk}", {"full_name": "x"}, token=token).status_code
        == 403
    )
    assert (
        api_a.call("patch", f"{USERS}/{bob.pk}", {"full_name": "Bob B"}, token=token).status_code
        == 200
    )


@pytest.mark.django_db
def test_tenant_wide_permissions_are_never_granted_by_a_scoped_role(
    api_a, grant, person, branches
) -> None:
    clerk = person("clerk")
    grant(clerk, ["audit.view", "roles.view", "users.view"], organization=branches["sales"])
    token = token_of(api_a, "clerk@alpha.test")
    mine = api_a.call("get", f"{USERS}/me/permissions", token=token).json()["data"]
    assert {p["codename"] for p in mine["permissions"]} == {"users.view"}
    assert api_a.call("get", ROLES, token=token).status_code == 403


@pytest.mark.django_db
def test_scoped_role_managers_grant_only_inside_their_subtree(
    api_a, grant, person, branches, tenant_a
) -> None:
    lead = person("lead")
    grant(lead, ["roles.manage", "users.view"], organization=branches["sales"])
    with tenant_context(tenant_a.tenant):
        viewer_role = Role.objects.create(name="Viewer", permissions=["users.view"])
    token = token_of(api_a, "lead@alpha.test")
    alice = branches["alice"]
    inside = api_a.call(
        "post",
        f"{USERS}/{alice.pk}/roles",
        {"role_id": viewer_role.pk, "organization_id": branches["emea"].pk},
        token=token,
    )
    assert inside.status_code == 201, inside.content
    for outside in (branches["eng"].pk, branches["company"].pk, None):
        response = api_a.call(
            "post",
            f"{USERS}/{alice.pk}/roles",
            {"role_id": viewer_role.pk, "organization_id": outside},
            token=token,
        )
        assert response.status_code == 403, outside
