"""The organization form picks the parent from the tree and keeps path and depth out."""

from __future__ import annotations

import re

import pytest

from tests.organizations.test_admin import ADMIN, admin_client


def _parent_options(html: str) -> list[str]:
    select = re.search(r'<select name="parent"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    return [label.strip() for label in re.findall(r"<option[^>]*>(.*?)</option>", select[1])]


@pytest.mark.django_db
def test_the_parent_is_picked_from_the_indented_tree(tenant_a, branches) -> None:
    client = admin_client(tenant_a)
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
    client = admin_client(tenant_a)
    sales = branches["sales"]
    html = client.get(f"{ADMIN}/{sales.pk}/change/", HTTP_HOST=tenant_a.host).content.decode()
    options = _parent_options(html)
    assert "Company" in options and "— Engineering" in options
    assert not {"— Sales", "— — EMEA", "— — — Berlin"} & set(options)
