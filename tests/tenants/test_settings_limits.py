"""Tenant settings that loosen a platform limit (the API rate limit) are for platform operators:
a tenant's owners may only tighten them. Bad values are a 422 and change nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.core.errors import ValidationError
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_update
from tests.accounts.conftest import Api, api_a  # noqa: F401
from tests.conftest import ADMIN_PASSWORD
from tests.tenants.conftest import admin_change_data

PUBLIC = "localhost"
OWN = "/api/v1/tenant"


@pytest.fixture(autouse=True)
def platform_rate(settings) -> None:
    settings.API_RATE_LIMIT = "600/m"


@pytest.fixture
def owner_token(api_a, tenant_a) -> str:  # noqa: F811
    return str(api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"])


def _stored(tenant_a) -> dict:
    return dict(Tenant.objects.get(pk=tenant_a.tenant.pk).settings)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rate",
    [
        "1000000/s",  # a huge burst
        "601/m",  # one more per window
        "6000/10m",  # the same average, ten times the burst
        "20/s",  # a smaller burst, twice the average
        "3000/5h",  # a 60th of the average, five times the burst
    ],
)
def test_an_owner_cannot_loosen_the_platform_rate_limit(
    api_a,  # noqa: F811
    owner_token,
    tenant_a,
    rate: str,
) -> None:
    response = api_a.call(
        "patch", OWN, {"settings": {"rate_limit": rate, "theme": "dark"}}, token=owner_token
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "rate_limit" in body["error"]["details"]["settings"][0]
    assert _stored(tenant_a) == {}


@pytest.mark.django_db
@pytest.mark.parametrize("rate", ["600/m", "100/m", "10/s", "1/h", "600/5h"])
def test_an_owner_may_tighten_it(
    api_a,  # noqa: F811
    owner_token,
    tenant_a,
    rate: str,
) -> None:
    response = api_a.call("patch", OWN, {"settings": {"rate_limit": rate}}, token=owner_token)
    assert response.status_code == 200, response.content
    assert _stored(tenant_a) == {"rate_limit": rate}


@pytest.mark.django_db
def test_an_operator_may_loosen_it_and_the_owner_keeps_or_lowers_the_grant(
    operator_api: APIClient,
    api_a,  # noqa: F811
    owner_token,
    tenant_a,
) -> None:
    granted = operator_api.patch(
        f"/api/v1/tenants/{tenant_a.tenant.pk}",
        {"settings": {"rate_limit": "1000000/s"}},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert granted.status_code == 200, granted.content
    assert _stored(tenant_a) == {"rate_limit": "1000000/s"}
    # The owner changes another setting and keeps the grant as it is.
    kept = api_a.call(
        "patch",
        OWN,
        {"settings": {"rate_limit": "1000000/s", "theme": "dark"}},
        token=owner_token,
    )
    assert kept.status_code == 200, kept.content
    # Lowering the grant is tightening; raising it again is not the owner's to do.
    assert (
        api_a.call(
            "patch", OWN, {"settings": {"rate_limit": "5000/s"}}, token=owner_token
        ).status_code
        == 200
    )
    raised = api_a.call("patch", OWN, {"settings": {"rate_limit": "6000/s"}}, token=owner_token)
    assert raised.status_code == 422
    assert _stored(tenant_a) == {"rate_limit": "5000/s", "theme": "dark"}
    # Settings no key of which is named change nothing; null drops the key, back to the
    # platform's limit.
    assert api_a.call("patch", OWN, {"settings": {}}, token=owner_token).status_code == 200
    assert _stored(tenant_a) == {"rate_limit": "5000/s", "theme": "dark"}
    dropped = api_a.call("patch", OWN, {"settings": {"rate_limit": None}}, token=owner_token)
    assert dropped.status_code == 200, dropped.content
    assert _stored(tenant_a) == {"theme": "dark"}


@pytest.mark.django_db
def test_a_patch_of_settings_changes_only_the_keys_it_names(
    operator_api: APIClient,
    api_a,  # noqa: F811
    tenant_a,
    owner_token,
) -> None:
    # An operator's grant must survive the owners turning on an MFA policy.
    granted = operator_api.patch(
        f"/api/v1/tenants/{tenant_a.tenant.pk}",
        {"settings": {"rate_limit": "6000/s", "theme": "dark"}},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert granted.status_code == 200, granted.content
    policy = {"mode": "required", "grace_days": 7}
    response = api_a.call("patch", OWN, {"settings": {"mfa": policy}}, token=owner_token)
    assert response.status_code == 200, response.content
    stored = _stored(tenant_a)
    assert stored["rate_limit"] == "6000/s" and stored["theme"] == "dark"
    assert stored["mfa"]["mode"] == "required" and stored["mfa"]["grace_days"] == 7
    # A key is replaced whole, and null removes one; a list is no settings object.
    response = api_a.call(
        "patch", OWN, {"settings": {"mfa": {"mode": "optional"}, "theme": None}}, token=owner_token
    )
    assert response.status_code == 200, response.content
    stored = _stored(tenant_a)
    assert "theme" not in stored and "grace_days" not in stored["mfa"]
    refused = api_a.call("patch", OWN, {"settings": ["rate_limit"]}, token=owner_token)
    assert refused.status_code == 422
    assert _stored(tenant_a) == stored


@pytest.mark.django_db
def test_the_service_refuses_a_loosening_unless_told_an_operator_asks(tenant_a) -> None:
    with pytest.raises(ValidationError):
        tenant_update(tenant=tenant_a.tenant, tenant_settings={"rate_limit": "601/m"})
    assert _stored(tenant_a) == {}
    tenant_update(
        tenant=tenant_a.tenant, tenant_settings={"rate_limit": "601/m"}, may_loosen_limits=True
    )
    assert _stored(tenant_a) == {"rate_limit": "601/m"}


@pytest.mark.django_db
def test_with_no_platform_limit_any_rate_is_a_tightening(
    api_a,  # noqa: F811
    owner_token,
    tenant_a,
    settings,
) -> None:
    settings.API_RATE_LIMIT = ""
    response = api_a.call(
        "patch", OWN, {"settings": {"rate_limit": "1000000/s"}}, token=owner_token
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rate", ["1/99999999999999999999d", "99999999999999999999/m", "1/400d", 600, ["600/m"]]
)
def test_rates_out_of_bounds_are_422_for_operators_too(
    operator_api: APIClient, tenant_a, rate
) -> None:
    response = operator_api.patch(
        f"/api/v1/tenants/{tenant_a.tenant.pk}",
        {"settings": {"rate_limit": rate}},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert response.status_code == 422, response.content
    assert _stored(tenant_a) == {}


@pytest.mark.django_db
def test_operators_loosen_it_in_the_public_admin(operator, tenant_a) -> None:
    client = Client()
    client.force_login(operator)
    url = f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/"
    data = admin_change_data(client.get(url, HTTP_HOST=PUBLIC))
    data["rate_limit"] = "5000/m"  # a field of its own, not JSON
    response = client.post(url, data, HTTP_HOST=PUBLIC)
    assert response.status_code == 302, response.content[:3000]
    assert _stored(tenant_a) == {"rate_limit": "5000/m"}
