"""The OpenAPI schema describes responses as they are really sent: real responses validate against it."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

PUBLIC = "localhost"


def fetch_schema(client: APIClient, host: str) -> dict[str, Any]:
    response = client.get("/api/schema/", {"format": "json"}, HTTP_HOST=host)
    assert response.status_code == 200
    return response.json()


def validate(schema_doc: dict[str, Any], path: str, method: str, response) -> None:
    operation = schema_doc["paths"][path][method]
    declared = operation["responses"][str(response.status_code)]
    body_schema = declared["content"]["application/json"]["schema"]
    # Keep the components beside the schema so its "#/components/..." references resolve.
    Draft202012Validator({**body_schema, "components": schema_doc["components"]}).validate(
        response.json()
    )
    for header in declared.get("headers", {}):
        assert header in response, (
            f"{header} declared for {method.upper()} {path} {response.status_code}"
        )


@pytest.mark.django_db
def test_schema_is_openapi_3_1_with_the_envelope_components(api: APIClient) -> None:
    doc = fetch_schema(api, PUBLIC)
    assert doc["openapi"].startswith("3.1")
    assert {"Meta", "ErrorEnvelope"} <= set(doc["components"]["schemas"])
    responses = doc["paths"]["/api/v1/tenants"]["get"]["responses"]
    ok = responses["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["success", "data", "meta"]
    page_ref = ok["properties"]["data"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][page_ref]["required"]) == {
        "items",
        "total",
        "page",
        "page_size",
        "total_pages",
    }
    for status in ("401", "403", "422", "429", "500"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }
    assert "409" in doc["paths"]["/api/v1/tenants"]["post"]["responses"]


@pytest.mark.django_db
def test_each_host_documents_its_own_api(api: APIClient, tenant_a) -> None:
    assert "/api/v1/tenants" in fetch_schema(api, PUBLIC)["paths"]
    assert "/api/v1/tenants" not in fetch_schema(api, tenant_a.host)["paths"]
    assert "/api/v1/info" in fetch_schema(api, tenant_a.host)["paths"]


@pytest.mark.django_db
def test_real_responses_validate_against_the_schema(
    operator_api: APIClient, api: APIClient, tenant_a, settings
) -> None:
    doc = fetch_schema(api, PUBLIC)
    tenant_doc = fetch_schema(api, tenant_a.host)

    validate(doc, "/api/v1/tenants", "get", operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC))
    created = operator_api.post(
        "/api/v1/tenants",
        {"name": "Umbrella", "slug": "umbrella", "admin_email": "a@umbrella.test"},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert created.status_code == 201, created.content
    validate(doc, "/api/v1/tenants", "post", created)
    tenant_id = created.json()["data"]["tenant"]["id"]
    validate(
        doc,
        "/api/v1/tenants/{tenant_id}",
        "get",
        operator_api.get(f"/api/v1/tenants/{tenant_id}", HTTP_HOST=PUBLIC),
    )
    validate(
        doc,
        "/api/v1/tenants/{tenant_id}",
        "patch",
        operator_api.patch(
            f"/api/v1/tenants/{tenant_id}", {"is_active": False}, format="json", HTTP_HOST=PUBLIC
        ),
    )
    # Errors: validation, conflict, not found, unauthenticated, rate limited.
    validate(
        doc,
        "/api/v1/tenants",
        "post",
        operator_api.post("/api/v1/tenants", {}, format="json", HTTP_HOST=PUBLIC),
    )
    validate(
        doc,
        "/api/v1/tenants",
        "post",
        operator_api.post(
            "/api/v1/tenants",
            {"name": "Again", "slug": "umbrella", "admin_email": "b@umbrella.test"},
            format="json",
            HTTP_HOST=PUBLIC,
        ),
    )
    validate(
        doc,
        "/api/v1/tenants/{tenant_id}",
        "get",
        operator_api.get("/api/v1/tenants/987654", HTTP_HOST=PUBLIC),
    )
    validate(doc, "/api/v1/tenants", "get", api.get("/api/v1/tenants", HTTP_HOST=PUBLIC))

    validate(tenant_doc, "/api/v1/info", "get", api.get("/api/v1/info", HTTP_HOST=tenant_a.host))
    validate(doc, "/api/v1/info", "get", api.get("/api/v1/info", HTTP_HOST=PUBLIC))
    settings.API_RATE_LIMIT = "1/m"
    api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    limited = api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    assert limited.status_code == 429
    validate(tenant_doc, "/api/v1/info", "get", limited)


@pytest.mark.django_db
def test_swagger_ui_is_served(api: APIClient, tenant_a) -> None:
    response = api.get("/api/docs/", HTTP_HOST=tenant_a.host)
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"cdn.jsdelivr" not in response.content  # served from our own static files


@pytest.mark.django_db
def test_identity_responses_validate_against_the_schema(api: APIClient, tenant_a) -> None:
    from django_tenants.utils import tenant_context

    from tests.accounts.factories import PASSWORD, make_user

    doc = fetch_schema(api, tenant_a.host)
    with tenant_context(tenant_a.tenant):
        make_user(email="schema@alpha.test", is_staff=True)
    host = {"HTTP_HOST": tenant_a.host}
    login = api.post(
        "/api/v1/auth/login",
        {"email": "schema@alpha.test", "password": PASSWORD},
        format="json",
        **host,
    )
    validate(doc, "/api/v1/auth/login", "post", login)
    failed = api.post(
        "/api/v1/auth/login",
        {"email": "schema@alpha.test", "password": "nope"},
        format="json",
        **host,
    )
    validate(doc, "/api/v1/auth/login", "post", failed)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {login.json()['data']['access_token']}", **host}
    validate(doc, "/api/v1/users", "get", api.get("/api/v1/users", **bearer))
    validate(doc, "/api/v1/users/me", "get", api.get("/api/v1/users/me", **bearer))
    validate(doc, "/api/v1/auth/sessions", "get", api.get("/api/v1/auth/sessions", **bearer))
    validate(doc, "/api/v1/users/me", "get", api.get("/api/v1/users/me", **host))
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
