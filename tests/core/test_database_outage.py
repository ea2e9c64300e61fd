"""PostgreSQL down: 503 SERVICE_UNAVAILABLE with Retry-After, wherever the query fails, logged
once; database errors that are bugs stay 500."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from apps.tenants.resolution import public_tenant, tenant_for_host
from tests.conftest import ADMIN_PASSWORD, TenantFixture
from tests.core.outages import DATABASE_FAILURES, fail_database, signed_in
from tests.core.test_openapi import fetch_schema, validate

PUBLIC = "localhost"


def assert_unavailable(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"] == {"retry_after": 5}
    assert body["meta"]["request_id"] == response["X-Request-ID"]
    content = response.content.decode()
    for internal in ("Traceback", "psycopg", "OperationalError", "InterfaceError", "127.0.0.1"):
        assert internal not in content
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("how", DATABASE_FAILURES)
def test_a_list_is_503_while_postgresql_is_down(
    api: APIClient, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    token = signed_in(api, tenant_a)["access_token"]
    fail_database(monkeypatch, how)

    response = api.get(
        "/api/v1/users", HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert_unavailable(response)


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["tenant", "public"])
def test_sign_in_is_503_while_postgresql_is_down(
    api: APIClient, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    hostname = tenant_a.host if host == "tenant" else PUBLIC
    tenant_for_host(tenant_a.host), public_tenant()  # resolved before the outage
    fail_database(monkeypatch)

    response = api.post(
        "/api/v1/auth/login",
        {"email": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=hostname,
    )

    assert_unavailable(response)


@pytest.mark.django_db
@pytest.mark.parametrize("how", DATABASE_FAILURES)
def test_a_request_on_a_host_not_resolved_yet_is_503_while_postgresql_is_down(
    api: APIClient, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The tenant middleware reads the domain table (nothing cached): the failure is raised
    in middleware, outside DRF, and still answers 503 in the envelope."""
    fail_database(monkeypatch, how)

    response = api.get("/api/v1/users", HTTP_HOST=tenant_a.host)

    assert_unavailable(response)


@pytest.mark.django_db
def test_an_unauthenticated_request_needs_no_database_to_be_refused(
    api: APIClient, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_for_host(tenant_a.host)
    fail_database(monkeypatch)

    response = api.get("/api/v1/users", HTTP_HOST=tenant_a.host)

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.django_db
@pytest.mark.parametrize("resolved", [True, False], ids=["tenant-cached", "tenant-not-cached"])
def test_the_admin_answers_a_503_page_while_postgresql_is_down(
    tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch, resolved: bool
) -> None:
    client = Client(raise_request_exception=False)  # a browser's form post
    if resolved:
        tenant_for_host(tenant_a.host)
    fail_database(monkeypatch)

    response = client.post(
        "/admin/login/",
        {"username": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        HTTP_HOST=tenant_a.host,
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"Service Unavailable" in response.content
    assert b"Traceback" not in response.content and b"psycopg" not in response.content


@pytest.mark.django_db
def test_an_outage_is_logged_once_as_database_unavailable(
    api: APIClient,
    tenant_a: TenantFixture,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = signed_in(api, tenant_a)["access_token"]
    fail_database(monkeypatch)
    caplog.clear()

    with caplog.at_level(logging.INFO):
        api.get("/api/v1/users", HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {token}")
        api.get("/api/v1/users", HTTP_HOST="nobody-cached.localhost")  # fails in middleware

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    events = [r.msg.get("event") if isinstance(r.msg, dict) else r.getMessage() for r in errors]
    assert events == ["database_unavailable", "database_unavailable"], events
    assert all(r.name == "apps.core.errors" for r in errors)


@pytest.mark.django_db
def test_programming_and_integrity_errors_stay_500(
    operator_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bugs are not outages: a query the database refuses as wrong is a 500, not a 503."""

    def bad_sql(**kwargs: Any) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_anywhere")

    def duplicate(**kwargs: Any) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE once_only (id int PRIMARY KEY)")
            cursor.execute("INSERT INTO once_only VALUES (1), (1)")  # IntegrityError

    for selector in (bad_sql, duplicate):
        monkeypatch.setattr("apps.tenants.selectors.tenant_list", selector)
        response = operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC)
        assert response.status_code == 500, (selector.__name__, response.content)
        assert response.json()["error"]["code"] == "INTERNAL_ERROR"
        assert "Retry-After" not in response


@pytest.mark.django_db
def test_readiness_reports_the_database_down(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_database(monkeypatch)

    response = api.get("/health/ready", HTTP_HOST=PUBLIC)

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["error"] == "OperationalError"


@pytest.mark.django_db
def test_the_schema_documents_the_503_as_it_is_sent(
    api: APIClient, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = fetch_schema(api, tenant_a.host)
    tenant_for_host(tenant_a.host)
    fail_database(monkeypatch)

    response = api.post(
        "/api/v1/auth/login",
        {"email": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=tenant_a.host,
    )

    assert response.status_code == 503
    validate(schema, "/api/v1/auth/login", "post", response)  # body and Retry-After
    assert "Retry-After" in schema["paths"]["/api/v1/users"]["get"]["responses"]["503"]["headers"]
