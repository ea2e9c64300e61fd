"""An audit row's page shows its changes as a table and links its target and actor."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.admin import changes_as_table
from apps.audit.models import AuditEvent
from tests.accounts.factories import make_user
from tests.audit.test_admin import LIST


@pytest.mark.django_db
def test_changes_read_as_a_table_and_the_target_is_linked(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        target = make_user(email="target@alpha.test", username="target")
        admin = tenant_a.admin()
        event = AuditEvent.objects.create(
            action="user.updated",
            target_type="user",
            target_id=str(target.pk),
            actor=admin,
            actor_email=admin.email,
            changes={"full_name": ["Ann <b>", "Ann B"], "is_active": [True, False]},
        )
    client = tenant_a.admin_client()
    html = client.get(f"{LIST}{event.pk}/change/", HTTP_HOST=tenant_a.host).content.decode()
    assert "<th>field</th><th>before</th><th>after</th>" in html
    assert "<tr><td>full_name</td><td>Ann &lt;b&gt;</td><td>Ann B</td></tr>" in html
    assert "<tr><td>is_active</td><td>true</td><td>false</td></tr>" in html
    assert f'<a href="/admin/accounts/user/{target.pk}/change/">user {target.pk}</a>' in html
    assert f'<a href="/admin/accounts/user/{admin.pk}/change/">{admin.email}</a>' in html
    listing = client.get(LIST, HTTP_HOST=tenant_a.host).content.decode()
    assert f'href="/admin/accounts/user/{target.pk}/change/"' in listing


def test_other_shapes_of_changes() -> None:
    created = str(changes_as_table({"email": "a@b.test", "roles": ["x"]}))
    assert "<th>field</th><th>value</th>" in created and "<td>[&quot;x&quot;]</td>" in created
    assert changes_as_table({}) == "-"
    assert "<code>" in str(changes_as_table(["odd"]))


@pytest.mark.django_db
def test_a_target_without_an_admin_page_is_plain_text(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        event = AuditEvent.objects.create(action="x.y", target_type="nothing", target_id="7")
    client = tenant_a.admin_client()
    html = client.get(f"{LIST}{event.pk}/change/", HTTP_HOST=tenant_a.host).content.decode()
    assert "nothing 7" in html and 'href="/admin/nothing' not in html
