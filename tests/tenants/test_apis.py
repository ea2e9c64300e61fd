"""The tenant provisioning API on the public host, for platform operators."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.tenancy import tenant_connection
from apps.tenants.models import Domain, Tenant

PUBLIC = "localhost"


def create(client: APIClient, **payload):
    body = {"name": "Globex", "slug": "globex", "admin_email": "Boss@Globex.test", **payload}
    return client.post("/api/v1/tenants", body, format="json", HTTP_HOST=PUBLIC)


@pytest.mark.django_db
def test_create_provisions_schema_domain_and_admin(
    operator_api: APIClient, api: APIClient, settings
) -> None:
    settings.PLATFORM_URL_SCHEME = "http"
    response = create(operator_api)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["tenant"]["slug"] == "globex"
    assert data["tenant"]["schema_name"] == "globex"
    assert data["tenant"]["domains"] == [{"domain": "globex.localhost", "is_primary": True}]
    assert data["admin"]["email"] == "boss@globex.test"
    password = data["admin_password"]
    assert isinstance(password, str) and len(password) >= 20
    assert data["url"] == "http://globex.localhost/"

    assert schema_exists("globex")
    tenant = Tenant.objects.get(slug="globex")
    with tenant_context(tenant):
        admin = User.objects.get(email="boss@globex.test")
        assert admin.is_staff and admin.is_superuser
        assert authenticate(email="boss@globex.test", password=password) == admin
    tenant_connection().set_schema_to_public()
    # The new host answers at once.
    info = api.get("/api/v1/info", HTTP_HOST="globex.localhost").json()["data"]
    assert info["tenant"] == {"name": "Globex", "slug": "globex"}


@pytest.mark.django_db
def test_create_with_chosen_password_returns_no_password(operator_api: APIClient) -> None:
    response = create(operator_api, admin_password="a-chosen-passphrase-42")
    assert response.status_code == 201
    assert response.json()["data"]["admin_password"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "slug",
    ["public", "www", "admin", "api", "tenant-template", "pg-stuff", "x", "-abc", "abc-", "a--b", "Ab_c", "a.b",
     "1abc", "a" * 41, "информ"],
)  # fmt: skip
def test_bad_or_reserved_slug_is_422(operator_api: APIClient, slug: str) -> None:
    response = create(operator_api, slug=slug)
    assert response.status_code == 422, (slug, response.content)
    assert "slug" in response.json()["error"]["details"]
    assert not Tenant.objects.customers().filter(slug=slug.lower()).exists()


@pytest.mark.django_db
def test_duplicate_slug_is_409(operator_api: APIClient, tenant_a) -> None:
    response = create(operator_api, slug=tenant_a.tenant.slug)
    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "CONFLICT"
    assert body["error"]["details"] == {"slug": ["A tenant with this slug already exists"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"admin_email": "not-an-email"}, "admin_email"),
        ({"admin_password": "123"}, "admin_password"),
        ({"admin_password": "password123"}, "admin_password"),
        ({"settings": {"rate_limit": "lots"}}, "settings"),
        ({"settings": ["not", "an", "object"]}, "settings"),
        ({"name": ""}, "name"),
        ({"schema_name": "sneaky"}, "schema_name"),
        ({"is_active": False}, "is_active"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    operator_api: APIClient, payload: dict, field: str
) -> None:
    response = create(operator_api, **payload)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["details"]
    assert not Tenant.objects.filter(slug="globex").exists()


@pytest.mark.django_db
def test_failed_provisioning_leaves_nothing_behind(
    operator_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_after_schema(**kwargs):
        # The schema and the rows exist by now; this failure must undo them all.
        assert schema_exists("globex")
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr("apps.tenants.services.user_create", fail_after_schema)
    response = create(operator_api)
    assert response.status_code == 500
    assert not Tenant.objects.filter(slug="globex").exists()
    assert not Domain.objects.filter(domain="globex.localhost").exists()
    assert not schema_exists("globex")

    monkeypatch.undo()
    assert create(operator_api).status_code == 201


@pytest.mark.django_db
def test_list_is_paginated_searchable_and_filterable(
    operator_api: APIClient, tenant_a, tenant_b
) -> None:
    response = operator_api.get("/api/v1/tenants", {"page_size": 1}, HTTP_HOST=PUBLIC)
    data = response.json()["data"]
    assert data["total"] >= 2 and data["page"] == 1 and data["page_size"] == 1
    assert data["total_pages"] == data["total"]
    assert len(data["items"]) == 1
    slugs = {
        t["slug"]
        for t in operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC).json()["data"]["items"]
    }
    assert {"alpha", "beta"} <= slugs and "public" not in slugs

    found = operator_api.get("/api/v1/tenants", {"search": "alph"}, HTTP_HOST=PUBLIC).json()["data"]
    assert [t["slug"] for t in found["items"]] == ["alpha"]

    assert (
        operator_api.get("/api/v1/tenants", {"is_active": "maybe"}, HTTP_HOST=PUBLIC).status_code
        == 422
    )
    assert (
        operator_api.get("/api/v1/tenants", {"colour": "red"}, HTTP_HOST=PUBLIC).status_code == 422
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "1.5"}, "page_size"),
        ({"page": "1000001"}, "page"),
    ],
)
def test_pagination_bounds_are_422(operator_api: APIClient, params: dict, field: str) -> None:
    response = operator_api.get("/api/v1/tenants", params, HTTP_HOST=PUBLIC)
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]


@pytest.mark.django_db
def test_page_past_the_end_is_empty_with_real_total(operator_api: APIClient, tenant_a) -> None:
    data = operator_api.get("/api/v1/tenants", {"page": 999}, HTTP_HOST=PUBLIC).json()["data"]
    assert data["items"] == [] and data["total"] >= 1 and data["page"] == 999


@pytest.mark.django_db
def test_list_costs_the_same_queries_at_any_page_size(
    operator_api: APIClient, tenant_a, tenant_b, django_assert_max_num_queries
) -> None:
    from django.test.utils import CaptureQueriesContext

    operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC)  # warm: tenant lookup, session
    counts = []
    for size in (1, 100):
        with CaptureQueriesContext(connection) as ctx:
            assert (
                operator_api.get(
                    "/api/v1/tenants", {"page_size": size}, HTTP_HOST=PUBLIC
                ).status_code
                == 200
            )
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_get_and_patch_and_deactivate(operator_api: APIClient, api: APIClient, tenant_a) -> None:
    url = f"/api/v1/tenants/{tenant_a.tenant.pk}"
    assert operator_api.get(url, HTTP_HOST=PUBLIC).json()["data"]["slug"] == "alpha"

    response = operator_api.patch(
        url,
        {"name": "Alpha Renamed", "settings": {"rate_limit": "50/m"}},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "Alpha Renamed"
    assert response.json()["data"]["settings"] == {"rate_limit": "50/m"}

    assert (
        operator_api.patch(url, {"is_active": False}, format="json", HTTP_HOST=PUBLIC).status_code
        == 200
    )
    assert api.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 404
    assert (
        operator_api.patch(url, {"is_active": True}, format="json", HTTP_HOST=PUBLIC).status_code
        == 200
    )
    assert api.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200


@pytest.mark.django_db
def test_patch_rejects_immutable_and_invalid_fields(operator_api: APIClient, tenant_a) -> None:
    url = f"/api/v1/tenants/{tenant_a.tenant.pk}"
    for payload in (
        {"slug": "new-slug"},
        {"schema_name": "x"},
        {"settings": {"rate_limit": "0/m"}},
        {"name": ""},
    ):
        response = operator_api.patch(url, payload, format="json", HTTP_HOST=PUBLIC)
        assert response.status_code == 422, payload
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.slug == "alpha" and tenant_a.tenant.settings == {}


@pytest.mark.django_db
def test_unknown_tenant_id_is_404(operator_api: APIClient) -> None:
    response = operator_api.get("/api/v1/tenants/999999", HTTP_HOST=PUBLIC)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_public_tenant_row_is_not_reachable_through_the_api(operator_api: APIClient) -> None:
    public = Tenant.objects.get(schema_name="public")
    assert operator_api.get(f"/api/v1/tenants/{public.pk}", HTTP_HOST=PUBLIC).status_code == 404
    response = operator_api.patch(
        f"/api/v1/tenants/{public.pk}", {"is_active": False}, format="json", HTTP_HOST=PUBLIC
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_tenant_api_is_not_served_on_tenant_hosts(api: APIClient, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        api.force_login(tenant_a.admin())
    response = api.get("/api/v1/tenants", HTTP_HOST=tenant_a.host)
    assert response.status_code == 404
