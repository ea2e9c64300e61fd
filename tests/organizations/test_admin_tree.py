"""The organization form picks the parent from the tree and keeps path and depth out."""

from __future__ import annotations

import re

import pytest

from tests.organizations.test_admin import ADMIN


def _parent_options(html: str) -> list[str]:
    select = re.search(r'<select name="parent"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    return [label.strip() for label in re.findall(r"<option[^>]*>(.*?)</option>", select[1])]


@pytest.mark.django_db
def test_the_parent_is_picked_from_the_indented_tree(tenant_a, branches) -> None:
    client = tenant_a.admin_client()
    html = client.get(f"{ADMIN}/add/", HTTP_HOST=tenant_a.host).content.decode()
    options = _parent_options(html)
    assert options[0].startswith("(none")
    for label in ("Company", "— Sales", "— — EMEA", "— — — Berlin", "— Engineering"):
        assert label in options
    assert options.index("Company") < options.index("— Sales") < options.index("— — EMEA")
    assert 'name="path"' not in html and 'name="depth"' not in html
    assert "field-path" not in html and "field-depth" not in html


@pytest.mark.django_db
def test_a_node_cannot_be_offered_its_own_subtree(tenant_a, branches) -> None:
    client = tenant_a.admin_client()
    sales = branches["sales"]
    html = client.get(f"{ADMIN}/{sales.pk}/change/", HTTP_HOST=tenant_a.host).content.decode()
    options = _parent_options(html)
    assert "Company" in options and "— Engineering" in options
    assert not {"— Sales", "— — EMEA", "— — — Berlin"} & set(options)


@pytest.mark.django_db
def test_another_person_on_an_existing_member_row_replaces_them(tenant_a, branches) -> None:
    from django_tenants.utils import tenant_context

    from apps.audit.models import AuditEvent
    from apps.organizations.models import Membership
    from tests.accounts.factories import make_user
    from tests.organizations.test_admin import form

    sales = branches["sales"]
    with tenant_context(tenant_a.tenant):
        first = make_user(email="first@alpha.test", username="first")
        second = make_user(email="second@alpha.test", username="second")
        row = Membership.objects.create(organization=sales, user=first, title="Lead")
    response = tenant_a.admin_client().post(
        f"{ADMIN}/{sales.pk}/change/",
        form(
            "Sales",
            "department",
            branches["company"],
            **{
                "memberships-TOTAL_FORMS": "1",
                "memberships-INITIAL_FORMS": "1",
                "memberships-0-id": str(row.pk),
                "memberships-0-organization": str(sales.pk),
                "memberships-0-user": str(second.pk),
                "memberships-0-title": "Lead",
            },
        ),
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    with tenant_context(tenant_a.tenant):
        assert list(
            Membership.objects.filter(organization=sales).values_list("user_id", flat=True)
        ) == [second.pk]
        actions = set(
            AuditEvent.objects.filter(target_id=str(sales.pk)).values_list("action", flat=True)
        )
    assert {"organization.member_removed", "organization.member_added"} <= actions
