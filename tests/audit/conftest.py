from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD
from tests.rbac.factories import grant_role

AUDIT = "/api/v1/audit-events"


@pytest.fixture
def auditor_a(tenant_a) -> User:
    """A user holding audit.view alone."""
    with tenant_context(tenant_a.tenant):
        user = make_user(email="auditor@alpha.test", username="auditor")
        grant_role(user, ["audit.view"], name="auditor")
        return user


@pytest.fixture
def auditor_token(api_a, auditor_a) -> str:  # noqa: F811
    return str(api_a.login("auditor@alpha.test")["access_token"])


@pytest.fixture
def owner_token(api_a, tenant_a) -> str:  # noqa: F811
    return str(api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def staff_token(api_a, staff_a) -> str:  # noqa: F811
    return str(api_a.login("staff@alpha.test")["access_token"])


@pytest.fixture
def rows(tenant_a) -> Callable[..., list[AuditEvent]]:
    """rows(action=..., ...): the tenant's audit rows matching the filters, oldest first."""

    def read(**filters: Any) -> list[AuditEvent]:
        with tenant_context(tenant_a.tenant):
            return list(AuditEvent.objects.filter(**filters).order_by("occurred_at", "id"))

    return read


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    return dict(body["error"])
