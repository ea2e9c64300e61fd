"""The tree in the tenant admin: indented, and every save through the services."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.organizations.models import Membership, Organization

ADMIN = "/admin/organizations/organization"


def form(name: str, type: str = "team", parent: Organization | None = None, **extra) -> dict:
    return {
        "name": name,
        "type": type,
        "parent": parent.pk if parent else "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        **extra,
    }


@pytest.mark.django_db
def test_the_changelist_is_the_tree_indented_in_path_order(tenant_a, branches) -> None:
    client = tenant_a.admin_client()
    page = client.get(f"{ADMIN}/", HTTP_HOST=tenant_a.host)
    assert page.status_code == 200
    html = page.content.decode()
    rows = ["Company", "— Sales", "— — EMEA", "— — — Berlin", "— Engineering", "— — Platform"]
    positions = [html.index(f">{row}<") for row in rows]
    sales_first = branches["sales"].path < branches["eng"].path
    order = positions if sales_first else positions[:1] + positions[4:] + positions[1:4]
    assert order == sorted(order)
    departments = client.get(f"{ADMIN}/?type__exact=department", HTTP_HOST=tenant_a.host)
    assert ">— Sales<" in departments.content.decode()
    assert ">Company<" not in departments.content.decode()
    found = client.get(f"{ADMIN}/?q=berl", HTTP_HOST=tenant_a.host).content.decode()
    assert ">— — — Berlin<" in found and ">— Sales<" not in found


@pytest.mark.django_db
def test_adding_in_the_admin_sets_the_path_and_audits_with_members(
    tenant_a, branches, member_a
) -> None:
    client = tenant_a.admin_client()
    response = client.post(
        f"{ADMIN}/add/",
        form(
            "Nordics",
            parent=branches["emea"],
            **{
                "memberships-TOTAL_FORMS": "1",
                "memberships-0-user": str(member_a.pk),
                "memberships-0-title": "Lead",
            },
        ),
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content[:3000]
    with tenant_context(tenant_a.tenant):
        nordics = Organization.objects.get(name="Nordics")
        assert nordics.path == f"{branches['emea'].path}{nordics.pk}/" and nordics.depth == 3
        assert Membership.objects.get(organization=nordics).title == "Lead"
        actions = set(
            AuditEvent.objects.filter(target_id=str(nordics.pk)).values_list("action", flat=True)
        )
    assert actions == {"organization.created", "organization.member_added"}


@pytest.mark.django_db
def test_changing_the_parent_in_the_admin_moves_the_subtree(tenant_a, branches) -> None:
    client = tenant_a.admin_client()
    emea, berlin, platform = branches["emea"], branches["berlin"], branches["platform"]
    response = client.post(
        f"{ADMIN}/{emea.pk}/change/",
        form("Europe", parent=platform),
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content[:3000]
    with tenant_context(tenant_a.tenant):
        emea.refresh_from_db()
        berlin.refresh_from_db()
        assert emea.name == "Europe" and emea.path == f"{platform.path}{emea.pk}/"
        assert berlin.path == f"{emea.path}{berlin.pk}/" and berlin.depth == 4
        actions = set(
            AuditEvent.objects.filter(target_id=str(emea.pk)).values_list("action", flat=True)
        )
    assert actions == {"organization.created", "organization.moved", "organization.updated"}


@pytest.mark.django_db
def test_the_admin_refuses_a_cycle(tenant_a, branches) -> None:
    client = tenant_a.admin_client()
    sales, berlin = branches["sales"], branches["berlin"]
    response = client.post(
        f"{ADMIN}/{sales.pk}/change/", form("Sales", "department", berlin), HTTP_HOST=tenant_a.host
    )
    assert response.status_code == 200
    # Its own subtree is not among the parents offered.
    assert "Select a valid choice" in response.content.decode()
    with tenant_context(tenant_a.tenant):
        sales.refresh_from_db()
        assert sales.parent_id == branches["company"].pk
        assert not AuditEvent.objects.filter(action="organization.moved").exists()


@pytest.mark.django_db
def test_deleting_in_the_admin_goes_through_the_service(tenant_a, branches, member_a) -> None:
    client = tenant_a.admin_client()
    berlin, emea = branches["berlin"], branches["emea"]
    with tenant_context(tenant_a.tenant):
        Membership.objects.create(organization=berlin, user=member_a)
    # A node with children is protected; the admin says so and deletes nothing.
    refused = client.post(f"{ADMIN}/{emea.pk}/delete/", {"post": "yes"}, HTTP_HOST=tenant_a.host)
    assert refused.status_code == 200 and "Cannot delete" in refused.content.decode()
    deleted = client.post(f"{ADMIN}/{berlin.pk}/delete/", {"post": "yes"}, HTTP_HOST=tenant_a.host)
    assert deleted.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not Organization.objects.filter(pk=berlin.pk).exists()
        assert Organization.objects.filter(pk=emea.pk).exists()
        audit = AuditEvent.objects.get(action="organization.deleted")
    assert audit.changes["memberships_removed"] == [[berlin.pk, member_a.pk]]
