"""Every error path answers with the error envelope, the documented codes and statuses, and no internals."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.tenants.services import tenant_update

PUBLIC = "localhost"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["meta"]["request_id"] == response["X-Request-ID"]
    assert body["meta"]["version"] == "1.0"
    assert body["meta"]["timestamp"].endswith("Z")
    return body


@pytest.mark.django_db
def test_unknown_api_path_is_not_found_in_envelope(api: APIClient, tenant_a) -> None:
    assert_error(api.get("/api/v1/nothing-here", HTTP_HOST=tenant_a.host), 404, "NOT_FOUND")


@pytest.mark.django_db
def test_unknown_tenant_host_is_not_found_and_never_public(
    api: APIClient, operator_api: APIClient
) -> None:
    body = assert_error(
        operator_api.get("/api/v1/tenants", HTTP_HOST="nobody.localhost"), 404, "NOT_FOUND"
    )
    assert "items" not in str(body)


@pytest.mark.django_db
def test_inactive_tenant_host_is_not_found(api: APIClient, tenant_a) -> None:
    tenant_update(tenant=tenant_a.tenant, is_active=False)
    assert_error(api.get("/api/v1/info", HTTP_HOST=tenant_a.host), 404, "NOT_FOUND")
    tenant_update(tenant=tenant_a.tenant, is_active=True)
    assert api.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200


@pytest.mark.django_db
def test_unauthenticated_is_401(api: APIClient) -> None:
    assert_error(api.get("/api/v1/tenants", HTTP_HOST=PUBLIC), 401, "UNAUTHORIZED")


@pytest.mark.django_db
def test_authenticated_without_permission_is_403(api: APIClient) -> None:
    from apps.accounts.models import User

    user = User.objects.create_user("plain@localhost", "a-long-enough-password")
    api.force_login(user)
    assert_error(api.get("/api/v1/tenants", HTTP_HOST=PUBLIC), 403, "FORBIDDEN")


@pytest.mark.django_db
def test_validation_error_is_422_with_field_details(operator_api: APIClient) -> None:
    body = assert_error(
        operator_api.post("/api/v1/tenants", {"name": "X"}, format="json", HTTP_HOST=PUBLIC),
        422,
        "VALIDATION_ERROR",
    )
    assert set(body["error"]["details"]) == {"slug", "admin_email"}
    assert all(isinstance(v, list) for v in body["error"]["details"].values())


@pytest.mark.django_db
def test_malformed_json_is_400(operator_api: APIClient) -> None:
    response = operator_api.generic(
        "POST",
        "/api/v1/tenants",
        '{"name": "x",',
        content_type="application/json",
        HTTP_HOST=PUBLIC,
    )
    assert_error(response, 400, "BAD_REQUEST")


@pytest.mark.django_db
def test_unsupported_media_type_is_415(operator_api: APIClient) -> None:
    response = operator_api.generic(
        "POST", "/api/v1/tenants", "name=x", content_type="text/plain", HTTP_HOST=PUBLIC
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.django_db
def test_method_not_allowed_is_405(operator_api: APIClient) -> None:
    response = operator_api.delete("/api/v1/tenants", HTTP_HOST=PUBLIC)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response["Allow"]


@pytest.mark.django_db
def test_not_acceptable_is_406(operator_api: APIClient) -> None:
    response = operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC, HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    # Content negotiation failed, so the body is still the JSON envelope.
    assert response.json()["error"]["code"] == "NOT_ACCEPTABLE"


@pytest.mark.django_db
def test_format_query_parameter_still_negotiates(operator_api: APIClient) -> None:
    """The JSON fast path is taken only without ?format=: a format DRF has no renderer for
    is refused as DRF refuses it, and ?format=json is served."""
    assert operator_api.get("/api/v1/info?format=json", HTTP_HOST=PUBLIC).status_code == 200
    response = operator_api.get("/api/v1/info?format=xml", HTTP_HOST=PUBLIC)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_csrf_failure_on_session_auth_is_403(operator) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(
        "/api/v1/tenants", {"name": "X", "slug": "x-y"}, format="json", HTTP_HOST=PUBLIC
    )
    body = assert_error(response, 403, "FORBIDDEN")
    assert "CSRF" in body["error"]["message"]


@pytest.mark.django_db
def test_unexpected_exception_in_view_is_generic_500_and_logged(
    operator_api: APIClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(**kwargs):
        raise RuntimeError("password=hunter2 SELECT * FROM secrets")

    monkeypatch.setattr("apps.tenants.selectors.tenant_list", explode)
    response = operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC)
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert body["error"]["message"] == "An unexpected error occurred"
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    logged = [r for r in caplog.records if "hunter2" in (r.exc_text or "") or r.exc_info]
    assert logged, "the 500 must be logged with its traceback"


@pytest.mark.django_db
def test_unexpected_exception_in_middleware_is_generic_500(
    api: APIClient, tenant_a, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(hostname: str):
        raise RuntimeError("connection string postgres://secret")

    monkeypatch.setattr("apps.tenants.middleware.tenant_for_host", explode)
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.content.decode()


@pytest.mark.django_db
def test_admin_keeps_html_errors(api: APIClient, tenant_a) -> None:
    response = api.get("/admin/no-such-page/", HTTP_HOST=tenant_a.host)
    assert response.status_code in (302, 404)
    assert not response["Content-Type"].startswith("application/json")
