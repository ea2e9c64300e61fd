from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.organizations.models import Organization
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD

_names = itertools.count()


@pytest.fixture
def owner_token(api_a, tenant_a) -> str:  # noqa: F811
    return str(api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def grant(tenant_a) -> Callable[..., RoleAssignment]:
    """grant(user, ["users.view"], organization=None): a fresh role with those permissions."""

    def give(
        user: User, permissions: Sequence[str], organization: Organization | None = None
    ) -> RoleAssignment:
        with tenant_context(tenant_a.tenant):
            role = Role.objects.create(name=f"role-{next(_names)}", permissions=list(permissions))
            return RoleAssignment.objects.create(user=user, role=role, organization=organization)

    return give


@pytest.fixture
def person(tenant_a) -> Callable[[str], User]:
    def make(name: str) -> User:
        with tenant_context(tenant_a.tenant):
            return make_user(email=f"{name}@alpha.test", username=name)

    return make


def org_create(name: str, parent: Organization | None = None) -> Organization:
    """A node with its path set (call inside tenant_context)."""
    org = Organization.objects.create(name=name, type="team", parent=parent)
    org.path = f"{parent.path if parent else '/'}{org.pk}/"
    org.depth = parent.depth + 1 if parent else 0
    org.save(update_fields=["path", "depth"])
    return org
