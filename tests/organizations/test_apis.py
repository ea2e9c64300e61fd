"""The organizations API, as the tenant's owner: tree writes, reads, members, audit rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.organizations.models import Membership, Organization
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import make_user
from tests.organizations.conftest import ORGS
from tests.organizations.factories import chain, node


def state(tenant_a) -> list[tuple[int, str, int | None, str, int]]:
    with tenant_context(tenant_a.tenant):
        return list(
            Organization.objects.order_by("id").values_list(
                "id", "name", "parent_id", "path", "depth"
            )
        )


def audits(tenant_a, action: str) -> list[AuditEvent]:
    with tenant_context(tenant_a.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])


# ------------------------------------------------------------------ create


@pytest.mark.django_db
def test_create_sets_path_and_depth_and_is_audited(api_a, owner_token, tenant_a) -> None:
    root = api_a.call("post", ORGS, {"name": "Acme", "type": "company"}, token=owner_token)
    assert root.status_code == 201, root.content
    acme = root.json()["data"]
    assert acme["parent_id"] is None and acme["depth"] == 0
    assert acme["path"] == f"/{acme['id']}/" and acme["type"] == "company"

    child = api_a.call(
        "post", ORGS, {"name": " Sales ", "parent_id": acme["id"]}, token=owner_token
    ).json()["data"]
    assert child["name"] == "Sales" and child["type"] == "team"
    assert child["path"] == f"/{acme['id']}/{child['id']}/" and child["depth"] == 1
    grandchild = api_a.call(
        "post", ORGS, {"name": "EMEA", "parent_id": child["id"]}, token=owner_token
    ).json()["data"]
    assert grandchild["path"] == f"{child['path']}{grandchild['id']}/"
    assert grandchild["depth"] == 2

    created = audits(tenant_a, "organization.created")
    assert [a.target_id for a in created] == [
        str(acme["id"]),
        str(child["id"]),
        str(grandchild["id"]),
    ]
    assert created[1].changes["parent"] == acme["id"] and created[1].changes["name"] == "Sales"
    assert (
        created[0].actor_email == tenant_a.admin_email and created[0].target_type == "organization"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Ok", "type": "Team!"}, "type"),
        ({"name": "Ok", "type": ""}, "type"),
        ({"name": "Ok", "parent_id": 987654}, "parent_id"),
        ({"name": "Ok", "parent_id": "abc"}, "parent_id"),
        ({"name": "Ok", "path": "/1/"}, "path"),
        ({"name": "Ok", "depth": 3}, "depth"),
    ],
)
def test_create_refuses_bad_input_and_changes_nothing(
    api_a, owner_token, tenant_a, payload, field
) -> None:
    before = state(tenant_a)
    body = error(api_a.call("post", ORGS, payload, token=owner_token), 422)
    assert body["code"] == "VALIDATION_ERROR"
    assert field in body["details"], body
    assert state(tenant_a) == before
    assert audits(tenant_a, "organization.created") == []


@pytest.mark.django_db
def test_sibling_names_are_unique_case_insensitively(
    api_a, owner_token, tenant_a, branches
) -> None:
    sales = branches["sales"].pk
    body = error(
        api_a.call("post", ORGS, {"name": "emea", "parent_id": sales}, token=owner_token), 409
    )
    assert body["code"] == "CONFLICT" and "name" in body["details"]
    roots = error(api_a.call("post", ORGS, {"name": "COMPANY"}, token=owner_token), 409)
    assert "name" in roots["details"]
    # The same name elsewhere in the tree is fine.
    elsewhere = api_a.call(
        "post", ORGS, {"name": "EMEA", "parent_id": branches["eng"].pk}, token=owner_token
    )
    assert elsewhere.status_code == 201


@pytest.mark.django_db
def test_the_tree_is_at_most_32_levels_deep(api_a, owner_token, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        levels = chain(32)
    assert levels[-1].depth == 31
    before = state(tenant_a)
    body = error(
        api_a.call(
            "post", ORGS, {"name": "Too deep", "parent_id": levels[-1].pk}, token=owner_token
        ),
        422,
    )
    assert "parent_id" in body["details"]
    assert state(tenant_a) == before
    # Moving a two-level subtree under level 30 would make 33 levels.
    with tenant_context(tenant_a.tenant):
        top = node("Top")
        node("Below", top)
    moved = api_a.call(
        "post", f"{ORGS}/{top.pk}/move", {"parent_id": levels[30].pk}, token=owner_token
    )
    assert "parent_id" in error(moved, 422)["details"]
    ok = api_a.call(
        "post", f"{ORGS}/{top.pk}/move", {"parent_id": levels[29].pk}, token=owner_token
    )
    assert ok.status_code == 200 and ok.json()["data"]["depth"] == 30


# ------------------------------------------------------------------ list, get, update


@pytest.mark.django_db
def test_list_filters_by_parent_search_and_type(api_a, owner_token, branches) -> None:
    def names(query: str) -> list[str]:
        response = api_a.call("get", f"{ORGS}{query}", token=owner_token)
        assert response.status_code == 200, response.content
        return [o["name"] for o in response.json()["data"]["items"]]

    everything = api_a.call("get", ORGS, token=owner_token).json()["data"]
    assert everything["total"] == 6
    # Tree order: by path.
    by_id = {o["id"]: o for o in everything["items"]}
    assert [o["path"] for o in everything["items"]] == sorted(o["path"] for o in by_id.values())
    assert names("?parent=null") == ["Company"]
    assert sorted(names(f"?parent={branches['company'].pk}")) == ["Engineering", "Sales"]
    assert names(f"?parent={branches['berlin'].pk}") == []
    assert sorted(names("?search=IN")) == ["Berlin", "Engineering"]
    assert sorted(names("?type=department")) == ["Engineering", "Sales"]
    assert names("?type=department&search=sal") == ["Sales"]
    assert names("?page_size=2&page=2") and len(names("?page_size=2&page=2")) == 2
    for bad in ("?parent=abc", "?parent=-1", "?page_size=0", "?colour=red"):
        response = api_a.call("get", f"{ORGS}{bad}", token=owner_token)
        assert response.status_code == 422, bad


@pytest.mark.django_db
def test_get_and_patch_name_and_type_with_audit(api_a, owner_token, tenant_a, branches) -> None:
    emea = branches["emea"]
    got = api_a.call("get", f"{ORGS}/{emea.pk}", token=owner_token)
    assert got.status_code == 200 and got.json()["data"]["path"] == emea.path
    assert error(api_a.call("get", f"{ORGS}/999999", token=owner_token), 404)["code"] == "NOT_FOUND"

    patched = api_a.call(
        "patch", f"{ORGS}/{emea.pk}", {"name": "Europe", "type": "region"}, token=owner_token
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["data"]["name"] == "Europe" and patched.json()["data"]["type"] == "region"
    [updated] = audits(tenant_a, "organization.updated")
    assert updated.target_id == str(emea.pk)
    assert updated.changes == {"name": ["EMEA", "Europe"], "type": ["team", "region"]}
    # No change: no audit row.
    api_a.call("patch", f"{ORGS}/{emea.pk}", {"name": "Europe"}, token=owner_token)
    assert len(audits(tenant_a, "organization.updated")) == 1


@pytest.mark.django_db
def test_patch_refuses_bad_input_and_sibling_names(api_a, owner_token, tenant_a, branches) -> None:
    sales = branches["sales"]
    before = state(tenant_a)
    for payload, field in (
        ({"parent_id": branches["eng"].pk}, "parent_id"),
        ({"path": "/9/"}, "path"),
        ({"name": ""}, "name"),
        ({"type": "Not A Word"}, "type"),
    ):
        body = error(api_a.call("patch", f"{ORGS}/{sales.pk}", payload, token=owner_token), 422)
        assert field in body["details"], payload
    taken = api_a.call("patch", f"{ORGS}/{sales.pk}", {"name": "engineering"}, token=owner_token)
    assert "name" in error(taken, 409)["details"]
    assert state(tenant_a) == before
    assert audits(tenant_a, "organization.updated") == []
    # Changing only the case of its own name is not a clash with itself.
    ok = api_a.call("patch", f"{ORGS}/{sales.pk}", {"name": "SALES"}, token=owner_token)
    assert ok.status_code == 200


# ------------------------------------------------------------------ delete


@pytest.mark.django_db
def test_delete_a_leaf(api_a, owner_token, tenant_a, branches) -> None:
    berlin = branches["berlin"]
    response = api_a.call("delete", f"{ORGS}/{berlin.pk}", token=owner_token)
    assert response.status_code == 204
    with tenant_context(tenant_a.tenant):
        assert not Organization.objects.filter(pk=berlin.pk).exists()
    [deleted] = audits(tenant_a, "organization.deleted")
    assert deleted.target_id == str(berlin.pk) and deleted.changes["deleted_ids"] == [berlin.pk]
    assert deleted.changes["name"] == "Berlin" and deleted.changes["path"] == berlin.path
    assert api_a.call("delete", f"{ORGS}/{berlin.pk}", token=owner_token).status_code == 404


@pytest.mark.django_db
def test_delete_refuses_nodes_with_children_or_members_without_cascade(
    api_a, owner_token, tenant_a, branches, member_a
) -> None:
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=branches["berlin"], user=member_a)
    before = state(tenant_a)
    for target in ("emea", "berlin"):
        response = api_a.call("delete", f"{ORGS}/{branches[target].pk}", token=owner_token)
        assert error(response, 409)["code"] == "CONFLICT"
    not_bool = api_a.call(
        "delete", f"{ORGS}/{branches['emea'].pk}?cascade=maybe", token=owner_token
    )
    assert "cascade" in error(not_bool, 422)["details"]
    assert state(tenant_a) == before
    assert audits(tenant_a, "organization.deleted") == []


@pytest.mark.django_db
def test_cascade_deletes_the_subtree_its_memberships_and_scoped_roles(
    api_a, owner_token, tenant_a, branches, member_a
) -> None:
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=branches["berlin"], user=member_a, title="Rep")
        Membership.objects.create(organization=branches["eng"], user=member_a)
        role = Role.objects.create(name="Sales lead", permissions=["organizations.view"])
        RoleAssignment.objects.create(user=member_a, role=role, organization=branches["emea"])
        kept = RoleAssignment.objects.create(user=member_a, role=role, organization=branches["eng"])
    sales, emea, berlin = branches["sales"], branches["emea"], branches["berlin"]
    response = api_a.call("delete", f"{ORGS}/{sales.pk}?cascade=true", token=owner_token)
    assert response.status_code == 204, response.content
    with tenant_context(tenant_a.tenant):
        assert sorted(Organization.objects.values_list("name", flat=True)) == [
            "Company",
            "Engineering",
            "Platform",
        ]
        assert list(Membership.objects.values_list("organization_id", flat=True)) == [
            branches["eng"].pk
        ]
        assert list(RoleAssignment.objects.filter(role=role)) == [kept]
    [deleted] = audits(tenant_a, "organization.deleted")
    assert deleted.target_id == str(sales.pk)
    assert deleted.changes["deleted_ids"] == [sales.pk, emea.pk, berlin.pk]
    assert deleted.changes["memberships_removed"] == [[berlin.pk, member_a.pk]]


# ------------------------------------------------------------------ move


@pytest.mark.django_db
def test_move_rewrites_the_subtree_paths_and_depths(api_a, owner_token, tenant_a, branches) -> None:
    company, sales, emea, berlin = (branches[k] for k in ("company", "sales", "emea", "berlin"))
    platform = branches["platform"]
    response = api_a.call(
        "post", f"{ORGS}/{emea.pk}/move", {"parent_id": platform.pk}, token=owner_token
    )
    assert response.status_code == 200, response.content
    moved = response.json()["data"]
    eng = branches["eng"]
    assert moved["parent_id"] == platform.pk and moved["depth"] == 3
    assert moved["path"] == f"/{company.pk}/{eng.pk}/{platform.pk}/{emea.pk}/"
    with tenant_context(tenant_a.tenant):
        berlin.refresh_from_db()
        sales.refresh_from_db()
        assert berlin.path == f"{moved['path']}{berlin.pk}/" and berlin.depth == 4
        assert berlin.parent_id == emea.pk
        assert sales.path == f"/{company.pk}/{sales.pk}/" and sales.depth == 1
    [audit] = audits(tenant_a, "organization.moved")
    assert audit.target_id == str(emea.pk) and audit.changes["parent"] == [sales.pk, platform.pk]

    # To the top: a root, depths shrink.
    root = api_a.call("post", f"{ORGS}/{emea.pk}/move", {"parent_id": None}, token=owner_token)
    assert root.status_code == 200
    assert root.json()["data"]["path"] == f"/{emea.pk}/" and root.json()["data"]["depth"] == 0
    with tenant_context(tenant_a.tenant):
        berlin.refresh_from_db()
        assert berlin.path == f"/{emea.pk}/{berlin.pk}/" and berlin.depth == 1
        # Every node's path is its parent's plus its id, and its depth the parent's plus one.
        for org in Organization.objects.select_related("parent"):
            parent_path = org.parent.path if org.parent else "/"
            assert org.path == f"{parent_path}{org.pk}/", org
            assert org.depth == (org.parent.depth + 1 if org.parent else 0), org
    descendants = api_a.call("get", f"{ORGS}/{emea.pk}/descendants", token=owner_token)
    assert [o["name"] for o in descendants.json()["data"]["items"]] == ["Berlin"]


@pytest.mark.django_db
def test_move_under_itself_or_a_descendant_is_refused(
    api_a, owner_token, tenant_a, branches
) -> None:
    sales = branches["sales"]
    before = state(tenant_a)
    for target in ("sales", "emea", "berlin"):
        response = api_a.call(
            "post", f"{ORGS}/{sales.pk}/move", {"parent_id": branches[target].pk}, token=owner_token
        )
        body = error(response, 422)
        assert body["code"] == "VALIDATION_ERROR" and "parent_id" in body["details"], target
    for payload in ({}, {"parent_id": "x"}, {"parent_id": 999999}, {"parent": None}):
        response = api_a.call("post", f"{ORGS}/{sales.pk}/move", payload, token=owner_token)
        assert error(response, 422)["details"], payload
    assert state(tenant_a) == before
    assert audits(tenant_a, "organization.moved") == []


@pytest.mark.django_db
def test_move_next_to_a_sibling_of_the_same_name_is_a_conflict(
    api_a, owner_token, tenant_a, branches
) -> None:
    with tenant_context(tenant_a.tenant):
        other = node("emea", branches["eng"])
    before = state(tenant_a)
    response = api_a.call(
        "post", f"{ORGS}/{other.pk}/move", {"parent_id": branches["sales"].pk}, token=owner_token
    )
    assert "name" in error(response, 409)["details"]
    assert state(tenant_a) == before
    # Moving to where it already is changes nothing.
    same = api_a.call(
        "post", f"{ORGS}/{other.pk}/move", {"parent_id": branches["eng"].pk}, token=owner_token
    )
    assert same.status_code == 200 and audits(tenant_a, "organization.moved") == []


# ------------------------------------------------------------------ descendants and ancestors


@pytest.mark.django_db
def test_descendants_in_tree_order_with_max_depth(api_a, owner_token, branches) -> None:
    company = branches["company"]

    def names(query: str = "") -> list[str]:
        response = api_a.call("get", f"{ORGS}/{company.pk}/descendants{query}", token=owner_token)
        assert response.status_code == 200, response.content
        return [o["name"] for o in response.json()["data"]["items"]]

    everything = api_a.call("get", f"{ORGS}/{company.pk}/descendants", token=owner_token)
    paths = [o["path"] for o in everything.json()["data"]["items"]]
    assert paths == sorted(paths)  # tree order: each node right before its own subtree
    found = names()
    assert sorted(found) == ["Berlin", "EMEA", "Engineering", "Platform", "Sales"]
    assert found.index("EMEA") == found.index("Sales") + 1
    assert found.index("Berlin") == found.index("EMEA") + 1
    assert sorted(names("?max_depth=1")) == ["Engineering", "Sales"]
    assert sorted(names("?max_depth=2")) == ["EMEA", "Engineering", "Platform", "Sales"]
    for bad in ("?max_depth=0", "?max_depth=x"):
        response = api_a.call("get", f"{ORGS}/{company.pk}/descendants{bad}", token=owner_token)
        assert "max_depth" in error(response, 422)["details"]
    leaf = api_a.call("get", f"{ORGS}/{branches['berlin'].pk}/descendants", token=owner_token)
    assert leaf.json()["data"]["total"] == 0


@pytest.mark.django_db
def test_ancestors_root_first(api_a, owner_token, branches) -> None:
    berlin = branches["berlin"]
    response = api_a.call("get", f"{ORGS}/{berlin.pk}/ancestors", token=owner_token)
    assert response.status_code == 200
    assert [o["name"] for o in response.json()["data"]] == ["Company", "Sales", "EMEA"]
    root = api_a.call("get", f"{ORGS}/{branches['company'].pk}/ancestors", token=owner_token)
    assert root.json()["data"] == []


def _queries(api_a, token: str, url: str) -> int:
    api_a.call("get", url, token=token)  # warm: grants cached, as on a busy server
    with CaptureQueriesContext(connection) as captured:
        response = api_a.call("get", url, token=token)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_descendants_and_ancestors_cost_the_same_queries_at_depth_2_and_12(
    api_a, owner_token, tenant_a
) -> None:
    with tenant_context(tenant_a.tenant):
        shallow = chain(3, "Shallow")  # depths 0..2
        deep = chain(13, "Deep")  # depths 0..12
    assert shallow[-1].depth == 2 and deep[-1].depth == 12
    for kind, shallow_node, deep_node in (
        ("ancestors", shallow[-1], deep[-1]),
        ("descendants", shallow[0], deep[0]),
    ):
        few = _queries(api_a, owner_token, f"{ORGS}/{shallow_node.pk}/{kind}")
        many = _queries(api_a, owner_token, f"{ORGS}/{deep_node.pk}/{kind}")
        assert few == many, (kind, few, many)
        assert 2 <= many <= 4, (kind, many)  # the node, then the rows (and their count)
    ancestors = api_a.call("get", f"{ORGS}/{deep[-1].pk}/ancestors", token=owner_token)
    assert [o["depth"] for o in ancestors.json()["data"]] == list(range(12))
    descendants = api_a.call("get", f"{ORGS}/{deep[0].pk}/descendants", token=owner_token)
    assert [o["depth"] for o in descendants.json()["data"]["items"]] == list(range(1, 13))


# ------------------------------------------------------------------ members


@pytest.mark.django_db
def test_members_added_listed_retitled_and_removed_with_audit(
    api_a, owner_token, tenant_a, branches, member_a
) -> None:
    sales = branches["sales"]
    url = f"{ORGS}/{sales.pk}/members"
    added = api_a.call("post", url, {"user_id": member_a.pk, "title": "Rep"}, token=owner_token)
    assert added.status_code == 201, added.content
    assert added.json()["data"]["user"]["email"] == member_a.email
    assert added.json()["data"]["title"] == "Rep"
    again = api_a.call("post", url, {"user_id": member_a.pk}, token=owner_token)
    assert error(again, 409)["code"] == "CONFLICT"

    listed = api_a.call("get", url, token=owner_token).json()["data"]
    assert listed["total"] == 1
    assert listed["items"][0]["user"]["id"] == member_a.pk and listed["items"][0]["title"] == "Rep"
    # Members of a node, not of its subtree.
    company = api_a.call("get", f"{ORGS}/{branches['company'].pk}/members", token=owner_token)
    assert company.json()["data"]["total"] == 0

    retitled = api_a.call("patch", f"{url}/{member_a.pk}", {"title": "Lead"}, token=owner_token)
    assert retitled.status_code == 200 and retitled.json()["data"]["title"] == "Lead"
    assert (
        "title"
        in error(api_a.call("patch", f"{url}/{member_a.pk}", {}, token=owner_token), 422)["details"]
    )
    removed = api_a.call("delete", f"{url}/{member_a.pk}", token=owner_token)
    assert removed.status_code == 204
    assert api_a.call("delete", f"{url}/{member_a.pk}", token=owner_token).status_code == 404
    assert (
        api_a.call("patch", f"{url}/{member_a.pk}", {"title": "x"}, token=owner_token).status_code
        == 404
    )
    with tenant_context(tenant_a.tenant):
        assert not Membership.objects.filter(organization=sales).exists()

    rows = {a.action: a for a in audits(tenant_a, "organization.member_added")}
    rows |= {a.action: a for a in audits(tenant_a, "organization.member_updated")}
    rows |= {a.action: a for a in audits(tenant_a, "organization.member_removed")}
    assert {a.target_id for a in rows.values()} == {str(sales.pk)}
    assert rows["organization.member_added"].changes == {"user_id": member_a.pk, "title": "Rep"}
    assert rows["organization.member_updated"].changes == {
        "user_id": member_a.pk,
        "title": ["Rep", "Lead"],
    }
    assert rows["organization.member_removed"].changes == {"user_id": member_a.pk, "title": "Lead"}


@pytest.mark.django_db
def test_members_must_be_live_users_of_this_tenant(
    api_a, owner_token, tenant_a, tenant_b, branches
) -> None:
    with tenant_context(tenant_b.tenant):
        # An id that exists only in the other tenant's schema.
        stranger = make_user(id=900_001, email="stranger@beta.test", username="stranger")
    with tenant_context(tenant_a.tenant):
        gone = make_user(email="gone@alpha.test", username="gone", is_deleted=True)
        assert not type(gone).objects.filter(pk=stranger.pk).exists()
    url = f"{ORGS}/{branches['sales'].pk}/members"
    for payload in (
        {"user_id": stranger.pk},
        {"user_id": gone.pk},
        {"user_id": 0},
        {"user_id": "abc"},
        {"user_id": gone.pk, "role": "x"},
        {},
    ):
        body = error(api_a.call("post", url, payload, token=owner_token), 422)
        assert body["details"], payload
    with tenant_context(tenant_a.tenant):
        assert not Membership.objects.exists()
    assert audits(tenant_a, "organization.member_added") == []
    # Listing leaves soft-deleted users out.
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=branches["sales"], user=gone)
    assert api_a.call("get", url, token=owner_token).json()["data"]["total"] == 0


@pytest.mark.django_db
def test_an_organization_id_from_another_tenant_does_not_exist_here(
    api_a, api_b, owner_token, tenant_a, tenant_b
) -> None:
    with tenant_context(tenant_b.tenant):
        foreign = Organization.objects.create(id=900_002, name="Beta Corp", path="/900002/")
    with tenant_context(tenant_a.tenant):
        assert not Organization.objects.filter(pk=foreign.pk).exists()
    for method, suffix, payload in (
        ("get", "", None),
        ("patch", "", {"name": "Mine now"}),
        ("delete", "", None),
        ("get", "/descendants", None),
        ("get", "/ancestors", None),
        ("get", "/members", None),
        ("post", "/move", {"parent_id": None}),
    ):
        response = api_a.call(method, f"{ORGS}/{foreign.pk}{suffix}", payload, token=owner_token)
        assert error(response, 404)["code"] == "NOT_FOUND", (method, suffix)
    under = api_a.call("post", ORGS, {"name": "Sub", "parent_id": foreign.pk}, token=owner_token)
    assert "parent_id" in error(under, 422)["details"]
    # Tenant A's token means nothing on tenant B's host.
    assert api_b.call("get", f"{ORGS}/{foreign.pk}", token=owner_token).status_code == 401
    with tenant_context(tenant_b.tenant):
        assert Organization.objects.get(pk=foreign.pk).name == "Beta Corp"
