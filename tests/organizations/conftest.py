from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.organizations.models import Organization
from tests.accounts.conftest import Api, api_a, api_b, member_a  # noqa: F401
from tests.organizations.factories import node
from tests.rbac.conftest import grant, owner_token, person  # noqa: F401

ORGS = "/api/v1/organizations"


def token_of(api: Api, email: str) -> str:
    return str(api.login(email)["access_token"])


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
