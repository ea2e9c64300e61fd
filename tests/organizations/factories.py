"""Organization trees for tests (call inside `tenant_context`)."""

from __future__ import annotations

from apps.organizations.models import Organization
from apps.organizations.services import organization_create


def node(name: str, parent: Organization | None = None, type: str = "team") -> Organization:
    """A node made by the service, as the API makes it."""
    return organization_create(
        actor=None, name=name, type=type, parent_id=parent.pk if parent else None
    )


def chain(length: int, root_name: str = "Level") -> list[Organization]:
    """root > child > ... : `length` nodes, depths 0 to length - 1."""
    nodes: list[Organization] = []
    for level in range(length):
        nodes.append(node(f"{root_name} {level}", nodes[-1] if nodes else None))
    return nodes


def org_create(name: str, parent: Organization | None = None) -> Organization:
    """A team with its path set, written directly (no event, no cache bump): for tests
    that need a tree, not the service."""
    org = Organization.objects.create(name=name, type="team", parent=parent)
    org.path = f"{parent.path if parent else '/'}{org.pk}/"
    org.depth = parent.depth + 1 if parent else 0
    org.save(update_fields=["path", "depth"])
    return org
