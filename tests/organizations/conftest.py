from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.organizations import services
from apps.organizations.models import Organization
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.conftest import Api, api_a, api_b, member_a  # noqa: F401
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD

ORGS = "/api/v1/organizations"
_names = itertools.count()


def node(name: str, parent: Organization | None = None, type: str = "team") -> Organization:
    """A node made by the service, as the API makes it (call inside tenant_context)."""
    return services.organization_create(
        actor=None, name=name, type=type, parent_id=parent.pk if parent else None
    )


def chain(length: int, root_name: str = "Level") -> list[Organization]:
    """root > child > ... : `length` nodes, depths 0 to length - 1."""
    nodes: list[Organization] = []
    for level in range(length):
        nodes.append(node(f"{root_name} {level}", nodes[-1] if nodes else None))
    return nodes


def token_of(api: Api, email: str) -> str:
    return str(api.login(email)["access_token"])


@pytest.fixture
def owner_token(api_a, tenant_a) -> str:  # noqa: F811
    return str(api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def person(tenant_a) -> Callable[[str], User]:
    def make(name: str) -> User:
        with tenant_context(tenant_a.tenant):
            return make_user(email=f"{name}@alpha.test", username=name)

    return make


@pytest.fixture
def grant(tenant_a) -> Callable[..., RoleAssignment]:
    """grant(user, ["organizations.view"], organization=None): a fresh role holding them."""

    def give(
        user: User, permissions: Sequence[str], organization: Organization | None = None
    ) -> RoleAssignment:
        with tenant_context(tenant_a.tenant):
            role = Role.objects.create(
                name=f"org-role-{next(_names)}", permissions=list(permissions)
            )
            return RoleAssignment.objects.create(user=user, role=role, organization=organization)

    return give


@pytest.fixture
def branches(tenant_a) -> dict[str, Organization]:
    """company > {sales > {emea > berlin}, engineering > platform}."""
    with tenant_context(tenant_a.tenant):
        company = node("Company", type="company")
        sales = node("Sales", company, type="department")
        emea = node("EMEA", sales)
        berlin = node("Berlin", emea)
        eng = node("Engineering", company, type="department")
        platform = node("Platform", eng)
    return {
        "company": company,
        "sales": sales,
        "emea": emea,
        "berlin": berlin,
        "eng": eng,
        "platform": platform,
    }
