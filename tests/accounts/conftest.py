from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from tests.accounts.factories import PASSWORD, make_user


class Api:
    """A client bound to one host, with helpers for bearer tokens."""

    def __init__(self, client: APIClient, host: str) -> None:
        self.client = client
        self.host = host

    def call(
        self, method: str, path: str, data: Any = None, token: str | None = None, **extra: Any
    ):
        headers = {"HTTP_HOST": self.host, **extra}
        if token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return getattr(self.client, method)(path, data, format="json", **headers)

    def login(self, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        response = self.call(
            "post", "/api/v1/auth/login", {"email": email, "password": password}, **extra
        )
        assert response.status_code == 200, response.content
        return dict(response.json()["data"])


@pytest.fixture
def api_a(api: APIClient, tenant_a) -> Api:
    return Api(api, tenant_a.host)


@pytest.fixture
def api_b(api: APIClient, tenant_b) -> Api:
    return Api(api, tenant_b.host)


@pytest.fixture
def member_a(tenant_a) -> User:
    with tenant_context(tenant_a.tenant):
        return make_user(email="member@alpha.test", username="member")


@pytest.fixture
def staff_a(tenant_a) -> User:
    """A user managing the tenant: staff (the admin) and the admin role (the API)."""
    from apps.rbac.models import Role, RoleAssignment

    with tenant_context(tenant_a.tenant):
        user = make_user(email="staff@alpha.test", username="staffer", is_staff=True)
        RoleAssignment.objects.create(user=user, role=Role.objects.get(system_key="admin"))
        return user
