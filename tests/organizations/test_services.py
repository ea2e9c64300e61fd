"""The services under the API: the tree lock, and writes outside a request."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.errors import ConflictError, ValidationError
from apps.organizations import services
from apps.organizations.models import Organization
from tests.organizations.factories import chain, node


def _try_tree_lock(schema: str) -> bool:
    """From a second connection: could another transaction take `schema`'s tree lock now?"""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        row = other.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext(%s || ':org-tree'))", [schema]
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.django_db
def test_a_move_holds_its_tenants_tree_lock_until_the_transaction_ends(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        first = Organization.objects.create(name="First", path="/0/")
        second = Organization.objects.create(name="Second", path="/0/")
        Organization.objects.filter(pk=first.pk).update(path=f"/{first.pk}/")
        Organization.objects.filter(pk=second.pk).update(path=f"/{second.pk}/")
        # The test's transaction is still open: a rename does not take the lock...
        services.organization_update(organization=first, name="Renamed")
        assert _try_tree_lock(tenant_a.schema)
        services.organization_move(actor=None, organization=second, parent_id=first.pk)
    # ...a move did, and holds it until commit: another move in this tenant waits.
    assert not _try_tree_lock(tenant_a.schema)
    # Other tenants' trees are not held up.
    assert _try_tree_lock(tenant_b.schema)


@pytest.mark.django_db
def test_services_outside_a_request_write_system_audit_rows(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        root = node("Root", type="company")
        event = AuditEvent.objects.get(action="organization.created", target_id=str(root.pk))
        assert event.actor is None and event.changes["type"] == "company"
        assert event.changes["path"] == f"/{root.pk}/" and event.changes["depth"] == 0


@pytest.mark.django_db
def test_a_long_subtree_moves_in_one_update(tenant_a, django_assert_max_num_queries) -> None:
    with tenant_context(tenant_a.tenant):
        levels = chain(12)
        target = node("Target")
        with django_assert_max_num_queries(12) as captured:
            services.organization_move(actor=None, organization=levels[1], parent_id=target.pk)
        updates = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
        assert len(updates) == 1, updates
        for org in Organization.objects.filter(pk__in=[o.pk for o in levels[1:]]):
            original = next(o for o in levels if o.pk == org.pk)
            assert org.depth == original.depth  # Target is a root, like levels[0]
            assert org.path == original.path.replace(f"/{levels[0].pk}/", f"/{target.pk}/", 1)


@pytest.mark.django_db
def test_service_rules_hold_without_the_api(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        root = node("Root")
        child = node("Child", root)
        with pytest.raises(ValidationError) as cycle:
            services.organization_move(actor=None, organization=root, parent_id=child.pk)
        assert "parent_id" in cycle.value.details
        with pytest.raises(ConflictError):
            node("child", root)
        with pytest.raises(ConflictError):
            services.organization_delete(organization=root)
        assert services.organization_delete(organization=root, cascade=True) == [root.pk, child.pk]
        assert not Organization.objects.exists()
