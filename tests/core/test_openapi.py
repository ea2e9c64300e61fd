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
    for status in ("400", "401", "403", "406", "413", "422", "429", "500", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/Error{status}"
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


# ------------------------------------------------------------------ every status and code


def _raised_codes() -> set[str]:
    """Every error code the code base can answer with: the codes of PlatformError classes,
    `code="..."` given when raising one, and codes passed to `error_response` directly."""
    import ast
    from pathlib import Path

    from apps.core.envelope import _CODE_BY_STATUS

    codes = {code for code, _ in _CODE_BY_STATUS.values()}
    for source in (Path(__file__).resolve().parents[2] / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and [getattr(t, "id", None) for t in item.targets] == ["code"]
                        and isinstance(item.value, ast.Constant)
                    ):
                        codes.add(str(item.value.value))
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name.endswith("Error"):
                    codes |= {
                        str(k.value.value)
                        for k in node.keywords
                        if k.arg == "code" and isinstance(k.value, ast.Constant)
                    }
                if name in ("error_response", "ErrorInfo") and len(node.args) >= 2:
                    code = node.args[1]
                    if isinstance(code, ast.Constant) and isinstance(code.value, str):
                        codes.add(code.value)
    return codes


def _documented_codes(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The error codes an error response's schema allows."""
    if "$ref" in schema:
        return _documented_codes(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/")[-1]])
    if "allOf" in schema:
        allowed = [_documented_codes(doc, part) for part in schema["allOf"]]
        return set.intersection(*[a for a in allowed if a]) if any(allowed) else set()
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    return set(code.get("enum", []))


@pytest.mark.django_db
def test_every_error_code_the_code_raises_is_in_the_schema(api: APIClient, tenant_a) -> None:
    raised = _raised_codes()
    assert {"SSO_REQUIRED", "SSO_STATE_INVALID", "PAYLOAD_TOO_LARGE", "CONFLICT"} <= raised
    for host in (PUBLIC, tenant_a.host):
        enum = fetch_schema(api, host)["components"]["schemas"]["ErrorEnvelope"]
        assert raised <= set(enum["properties"]["error"]["properties"]["code"]["enum"])


@pytest.mark.django_db
def test_each_status_documents_the_codes_it_carries(api: APIClient, tenant_a) -> None:
    doc = fetch_schema(api, tenant_a.host)

    def codes(path: str, method: str, status: str) -> set[str]:
        response = doc["paths"][path][method]["responses"][status]
        return _documented_codes(doc, response["content"]["application/json"]["schema"])

    assert codes("/api/v1/auth/login", "post", "403") == {
        "FORBIDDEN",
        "SSO_REQUIRED",
        "EMAIL_NOT_VERIFIED",
    }
    assert codes("/api/v1/auth/oidc/{provider}/callback", "get", "400") == {
        "BAD_REQUEST",
        "SSO_STATE_INVALID",
    }
    assert codes("/api/v1/users/{user_id}", "delete", "422") == {"VALIDATION_ERROR"}
    assert codes("/api/v1/auth/logout", "post", "401") == {"UNAUTHORIZED"}
    assert codes("/api/v1/roles", "post", "413") == {"PAYLOAD_TOO_LARGE"}
    assert codes("/api/v1/users/me", "get", "403") == {"FORBIDDEN"}


@pytest.mark.django_db
def test_every_operation_documents_what_any_request_can_meet(api: APIClient, tenant_a) -> None:
    for host in (PUBLIC, tenant_a.host):
        doc = fetch_schema(api, host)
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                assert {"400", "406", "413", "429", "500", "503"} <= set(responses), (path, method)
                if "{" in path:
                    assert "404" in responses, (path, method)
                if any(requirement for requirement in operation.get("security", [])):
                    assert "401" in responses, (path, method)
                for status in ("429", "503"):
                    assert "Retry-After" in responses[status]["headers"], (path, method)


@pytest.mark.django_db
def test_operations_document_what_their_view_answers(api: APIClient, tenant_a) -> None:
    doc = fetch_schema(api, tenant_a.host)
    paths = doc["paths"]

    assert {"409", "422"} <= set(paths["/api/v1/users/{user_id}"]["delete"]["responses"])
    assert "401" in paths["/api/v1/auth/logout"]["post"]["responses"]
    assert "401" in paths["/api/v1/info"]["get"]["responses"]  # a bad token is refused
    assert "409" in paths["/api/v1/identity-providers"]["post"]["responses"]
    # A paginated list takes ?page= and ?page_size= whether or not its view names them.
    for path in ("/api/v1/roles", "/api/v1/organizations/{organization_id}/members"):
        operation = paths[path]["get"]
        assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}, path
        assert "422" in operation["responses"], path


@pytest.mark.django_db
def test_answers_once_missing_from_the_schema_validate_against_it(
    api: APIClient, tenant_a, client_ip
) -> None:
    from django_tenants.utils import tenant_context

    from apps.accounts.services.sessions import ClientInfo, session_start
    from apps.sso.models import IdentityProvider
    from tests.accounts.factories import PASSWORD, make_user

    doc = fetch_schema(api, tenant_a.host)
    host = {"HTTP_HOST": tenant_a.host}
    with tenant_context(tenant_a.tenant):
        admin = tenant_a.admin()
        token = session_start(user=admin, client=ClientInfo(None, "test")).access_token
        make_user(email="member@alpha.test", username="member")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}", **host}

    logout = api.post("/api/v1/auth/logout", {"refresh_token": "garbage"}, format="json", **host)
    assert logout.status_code == 401
    validate(doc, "/api/v1/auth/logout", "post", logout)

    own = api.delete(f"/api/v1/users/{admin.pk}", **bearer)
    assert own.status_code == 422
    validate(doc, "/api/v1/users/{user_id}", "delete", own)

    callback = api.get("/api/v1/auth/oidc/corp/callback", {"state": "forged", "code": "x"}, **host)
    assert callback.json()["error"]["code"] == "SSO_STATE_INVALID"
    validate(doc, "/api/v1/auth/oidc/{provider}/callback", "get", callback)

    too_large = api.generic(
        "POST",
        "/api/v1/roles",
        "{}",
        content_type="application/json",
        CONTENT_LENGTH="9" * 9,
        **bearer,
    )
    assert too_large.status_code == 413
    validate(doc, "/api/v1/roles", "post", too_large)

    with tenant_context(tenant_a.tenant):
        IdentityProvider.objects.create(
            slug="corp", name="Corp", issuer="https://idp.example.test", client_id="platform",
            sso_required=True,
        )  # fmt: skip
    refused = api.post(
        "/api/v1/auth/login",
        {"email": "member@alpha.test", "password": PASSWORD},
        format="json",
        **host,
    )
    assert refused.json()["error"]["code"] == "SSO_REQUIRED"
    validate(doc, "/api/v1/auth/login", "post", refused)
