from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.organizations.models import Organization
from apps.rbac.models import RoleAssignment
from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD
from tests.rbac.factories import grant_role


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
            return grant_role(user, permissions, organization)

    return give


@pytest.fixture
def person(tenant_a) -> Callable[[str], User]:
    def make(name: str) -> User:
        with tenant_context(tenant_a.tenant):
            return make_user(email=f"{name}@alpha.test", username=name)

    return make
