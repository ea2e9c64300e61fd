"""Scoped grants: a grant at a node covers its subtree; outside it, nodes do not exist."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.organizations.models import Membership, Organization
from tests.organizations.conftest import ORGS, token_of

VIEW, MANAGE = "organizations.view", "organizations.manage"


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    return [o["name"] for o in (data["items"] if isinstance(data, dict) else data)]


def paths(tenant_a) -> dict[int, str]:
    with tenant_context(tenant_a.tenant):
        return dict(Organization.objects.values_list("id", "path"))


@pytest.mark.django_db
def test_a_subtree_grant_sees_and_manages_inside_and_nothing_outside(
    api_a, grant, person, branches, tenant_a, member_a
) -> None:
    lead = person("lead")
    grant(lead, [VIEW, MANAGE], organization=branches["sales"])
    token = token_of(api_a, "lead@alpha.test")
    ids = {name: org.pk for name, org in branches.items()}

    def call(method: str, path: str, data=None):
        return api_a.call(method, path, data, token=token)

    # Lists, searches and subtrees are narrowed to the grant's subtree.
    assert sorted(names(call("get", ORGS))) == ["Berlin", "EMEA", "Sales"]
    assert names(call("get", f"{ORGS}?search=e")) == ["Sales", "EMEA", "Berlin"]
    assert names(call("get", f"{ORGS}?search=engin")) == []
    assert names(call("get", f"{ORGS}?parent=null")) == []
    assert names(call("get", f"{ORGS}?parent={ids['company']}")) == ["Sales"]
    assert names(call("get", f"{ORGS}?parent={ids['eng']}")) == []
    assert names(call("get", f"{ORGS}/{ids['sales']}/descendants")) == ["EMEA", "Berlin"]
    # Ancestors: only those inside the scope.
    assert names(call("get", f"{ORGS}/{ids['berlin']}/ancestors")) == ["Sales", "EMEA"]
    assert names(call("get", f"{ORGS}/{ids['sales']}/ancestors")) == []

    # Other branches, and the root above the grant, answer as if they did not exist.
    before = paths(tenant_a)
    for outside in ("company", "eng", "platform"):
        oid = ids[outside]
        for method, suffix, data in (
            ("get", "", None),
            ("get", "/descendants", None),
            ("get", "/ancestors", None),
            ("get", "/members", None),
            ("patch", "", {"name": "Taken over"}),
            ("delete", "", None),
            ("post", "/move", {"parent_id": ids["sales"]}),
            ("post", "/members", {"user_id": member_a.pk}),
            ("patch", f"/members/{member_a.pk}", {"title": "x"}),
            ("delete", f"/members/{member_a.pk}", None),
        ):
            response = call(method, f"{ORGS}/{oid}{suffix}", data)
            assert response.status_code == 404, (outside, method, suffix, response.content)
            assert response.json()["error"]["code"] == "NOT_FOUND"
    # As a new parent, a node outside is an unknown id.
    under = call("post", ORGS, {"name": "Sneaky", "parent_id": ids["eng"]})
    assert under.status_code == 422 and "parent_id" in under.json()["error"]["details"]
    away = call("post", f"{ORGS}/{ids['berlin']}/move", {"parent_id": ids["platform"]})
    assert away.status_code == 422 and "parent_id" in away.json()["error"]["details"]
    # Roots need the grant everywhere.
    assert call("post", ORGS, {"name": "New root"}).status_code == 403
    assert call("post", f"{ORGS}/{ids['berlin']}/move", {"parent_id": None}).status_code == 403
    assert paths(tenant_a) == before
    with tenant_context(tenant_a.tenant):
        assert not Membership.objects.exists()

    # Inside: everything works.
    created = call("post", ORGS, {"name": "Iberia", "parent_id": ids["emea"]})
    assert created.status_code == 201, created.content
    assert call("patch", f"{ORGS}/{ids['emea']}", {"name": "Europe"}).status_code == 200
    moved = call("post", f"{ORGS}/{ids['berlin']}/move", {"parent_id": ids["sales"]})
    assert moved.status_code == 200 and moved.json()["data"]["depth"] == 2
    # A member falls under the subtree's user managers: only a user the lead already
    # manages may be added.
    refused = call("post", f"{ORGS}/{ids['sales']}/members", {"user_id": member_a.pk})
    assert refused.status_code == 403, refused.content
    assert "users you manage" in refused.json()["error"]["message"]
    grant(lead, ["users.manage"])
    added = call("post", f"{ORGS}/{ids['sales']}/members", {"user_id": member_a.pk})
    assert added.status_code == 201, added.content
    assert call("delete", f"{ORGS}/{created.json()['data']['id']}").status_code == 204


@pytest.mark.django_db
def test_seeing_without_managing_is_a_403(api_a, grant, person, branches, member_a) -> None:
    lead = person("lead")
    grant(lead, [VIEW], organization=branches["company"])
    grant(lead, [MANAGE], organization=branches["sales"])
    token = token_of(api_a, "lead@alpha.test")
    ids = {name: org.pk for name, org in branches.items()}

    def status(method: str, path: str, data=None) -> int:
        response = api_a.call(method, path, data, token=token)
        if response.status_code == 403:
            assert response.json()["error"]["code"] == "FORBIDDEN"
        return int(response.status_code)

    assert status("get", f"{ORGS}/{ids['eng']}") == 200
    assert status("get", f"{ORGS}/{ids['eng']}/members") == 200
    assert status("patch", f"{ORGS}/{ids['eng']}", {"name": "x"}) == 403
    assert status("delete", f"{ORGS}/{ids['platform']}") == 403
    assert status("post", f"{ORGS}/{ids['eng']}/members", {"user_id": member_a.pk}) == 403
    assert status("post", ORGS, {"name": "Ops", "parent_id": ids["eng"]}) == 403
    # A move needs the grant on the node and on the new parent.
    assert status("post", f"{ORGS}/{ids['emea']}/move", {"parent_id": ids["eng"]}) == 403
    assert status("post", f"{ORGS}/{ids['platform']}/move", {"parent_id": ids["sales"]}) == 403
    assert status("post", f"{ORGS}/{ids['berlin']}/move", {"parent_id": ids["sales"]}) == 200
    assert status("post", f"{ORGS}/{ids['sales']}/members", {"user_id": member_a.pk}) == 403
    grant(lead, ["users.manage"])
    assert status("post", f"{ORGS}/{ids['sales']}/members", {"user_id": member_a.pk}) == 201


@pytest.mark.django_db
def test_managing_a_subtree_without_the_view_permission(api_a, grant, person, branches) -> None:
    maker = person("maker")
    grant(maker, [MANAGE], organization=branches["sales"])
    token = token_of(api_a, "maker@alpha.test")
    # Reads declare organizations.view, which they do not hold anywhere.
    listing = api_a.call("get", ORGS, token=token)
    assert listing.status_code == 403 and VIEW in listing.json()["error"]["message"]
    created = api_a.call(
        "post", ORGS, {"name": "Nordics", "parent_id": branches["emea"].pk}, token=token
    )
    assert created.status_code == 201, created.content
    outside = api_a.call("patch", f"{ORGS}/{branches['eng'].pk}", {"name": "x"}, token=token)
    assert outside.status_code == 404


@pytest.mark.django_db
def test_without_any_grant_everything_is_refused(api_a, person, branches) -> None:
    person("nobody")
    token = token_of(api_a, "nobody@alpha.test")
    assert api_a.call("get", ORGS, token=token).status_code == 403
    assert api_a.call("get", f"{ORGS}/{branches['sales'].pk}", token=token).status_code == 403
    assert api_a.call("post", ORGS, {"name": "x"}, token=token).status_code == 403
    assert api_a.call("get", ORGS).status_code == 401


@pytest.mark.django_db
def test_grants_follow_their_subtree_when_it_moves(
    api_a, owner_token, grant, person, branches, tenant_a
) -> None:
    viewer = person("viewer")
    grant(viewer, [VIEW], organization=branches["emea"])
    token = token_of(api_a, "viewer@alpha.test")
    emea, berlin = branches["emea"], branches["berlin"]
    # Warm the grants cache with the old paths.
    assert names(api_a.call("get", ORGS, token=token)) == ["EMEA", "Berlin"]
    moved = api_a.call(
        "post", f"{ORGS}/{emea.pk}/move", {"parent_id": branches["platform"].pk}, token=owner_token
    )
    assert moved.status_code == 200
    # The grant is at the node, wherever it now is: its cached paths were dropped.
    assert api_a.call("get", f"{ORGS}/{berlin.pk}", token=token).status_code == 200
    listed = api_a.call("get", ORGS, token=token).json()["data"]["items"]
    assert [o["path"] for o in listed] == [
        f"{moved.json()['data']['path']}",
        f"{moved.json()['data']['path']}{berlin.pk}/",
    ]
    ancestors = api_a.call("get", f"{ORGS}/{berlin.pk}/ancestors", token=token)
    assert names(ancestors) == ["EMEA"]
