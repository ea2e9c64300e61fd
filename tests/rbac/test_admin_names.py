"""Role assignments in the admin read as names (user, role, where) and are picked by
searching, with the search held to the permissions of the page searched."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.organizations.services import organization_create
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import make_user
from tests.rbac.test_admin_permissions import _client, _staff

ADMIN = "/admin/rbac/roleassignment"
AUTOCOMPLETE = "/admin/autocomplete/"
IDS_ONLY = re.compile(r"\b\d+: \d+( in \d+)?\b")


@pytest.fixture
def people(tenant_a):
    with tenant_context(tenant_a.tenant):
        member = make_user(email="member@alpha.test", username="member", full_name="Mem Ber")
        gone = make_user(email="gone@alpha.test", username="gone", is_deleted=True)
        sales = organization_create(actor=None, name="Sales", type="department", parent_id=None)
        admin_role = Role.objects.get(system_key="admin")
    return {"member": member, "gone": gone, "sales": sales, "admin": admin_role}


@pytest.mark.django_db
def test_an_assignment_added_by_search_reads_as_names(tenant_a, people) -> None:
    client = _client(tenant_a, tenant_a.admin())
    host = {"HTTP_HOST": tenant_a.host}
    page = client.get(f"{ADMIN}/add/", **host).content.decode()
    for field in ("user", "role", "organization"):
        assert f'name="{field}"' in page
    assert page.count('data-ajax--url="/admin/autocomplete/"') == 3

    response = client.post(
        f"{ADMIN}/add/",
        {
            "user": people["member"].pk,
            "role": people["admin"].pk,
            "organization": people["sales"].pk,
        },
        follow=True,
        **host,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "member@alpha.test: admin in Sales" in html  # the success message
    listing = client.get(f"{ADMIN}/", **host).content.decode()
    assert "member@alpha.test" in listing and ">Sales<" in listing
    assert not IDS_ONLY.search(listing)
    with tenant_context(tenant_a.tenant):
        assignment = RoleAssignment.objects.get(user=people["member"], role=people["admin"])
    detail = client.get(f"{ADMIN}/{assignment.pk}/change/", **host).content.decode()
    assert "member@alpha.test: admin in Sales" in detail and not IDS_ONLY.search(detail)


def _search(client: Client, host: str, field: str, term: str):
    return client.get(
        AUTOCOMPLETE,
        {"app_label": "rbac", "model_name": "roleassignment", "field_name": field, "term": term},
        HTTP_HOST=host,
    )


@pytest.mark.django_db
def test_the_user_search_finds_live_users_by_name_or_address(tenant_a, people) -> None:
    client = _client(tenant_a, tenant_a.admin())
    found = _search(client, tenant_a.host, "user", "mem").json()["results"]
    assert [r["text"] for r in found] == ["member@alpha.test"]
    assert _search(client, tenant_a.host, "user", "gone").json()["results"] == []
    roles = _search(client, tenant_a.host, "role", "adm").json()["results"]
    assert "admin" in [r["text"] for r in roles]
    orgs = _search(client, tenant_a.host, "organization", "sal").json()["results"]
    assert [r["text"] for r in orgs] == ["Sales"]


@pytest.mark.django_db
def test_the_search_needs_the_searched_pages_permission(tenant_a, people) -> None:
    # Managing roles does not open the user list: searching users is refused.
    role_manager = _staff(tenant_a, "rolemaker", ["roles.view", "roles.manage"])
    client = _client(tenant_a, role_manager)
    assert _search(client, tenant_a.host, "user", "mem").status_code == 403
    assert _search(client, tenant_a.host, "role", "adm").status_code == 200
    # And staff status alone searches nothing.
    nobody = _client(tenant_a, _staff(tenant_a, "plainstaff", []))
    assert _search(nobody, tenant_a.host, "role", "adm").status_code == 403
