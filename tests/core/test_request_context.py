from __future__ import annotations

import json
import logging

import pytest
import structlog
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient


def _json_formatter() -> logging.Formatter:
    from apps.core.logging import logging_config

    config = logging_config(json=True, level="INFO")["formatters"]["structured"]
    return structlog.stdlib.ProcessorFormatter(
        processors=config["processors"], foreign_pre_chain=config["foreign_pre_chain"]
    )


@pytest.mark.django_db
def test_request_id_is_generated_when_absent(api: APIClient, tenant_a) -> None:
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    request_id = response["X-Request-ID"]
    assert request_id.startswith("req_") and len(request_id) == 36
    assert response.json()["meta"]["request_id"] == request_id
    assert api.get("/api/v1/info", HTTP_HOST=tenant_a.host)["X-Request-ID"] != request_id


@pytest.mark.django_db
def test_sane_client_request_id_is_echoed(api: APIClient, tenant_a) -> None:
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host, HTTP_X_REQUEST_ID="trace-42.a:b_c")
    assert response["X-Request-ID"] == "trace-42.a:b_c"
    assert response.json()["meta"]["request_id"] == "trace-42.a:b_c"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    ["", "has space", 'quote"d', "x" * 129, "new\nline", "-leading-dash", "ünicode"],
)
def test_insane_client_request_id_is_replaced(api: APIClient, tenant_a, bad: str) -> None:
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host, HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert response["X-Request-ID"].startswith("req_")


@pytest.mark.django_db
def test_response_time_header_on_success_and_error(api: APIClient, tenant_a) -> None:
    for path in ("/api/v1/info", "/api/v1/missing"):
        value = api.get(path, HTTP_HOST=tenant_a.host)["X-Response-Time"]
        assert value.endswith("ms") and float(value[:-2]) >= 0


@pytest.mark.django_db
def test_access_log_line_is_json_with_request_context(
    api: APIClient, tenant_a, caplog: pytest.LogCaptureFixture
) -> None:
    with tenant_context(tenant_a.tenant):
        api.force_login(tenant_a.admin())
    with caplog.at_level(logging.INFO, logger="platform.access"):
        response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host, HTTP_X_REQUEST_ID="log-check-1")
    records = [r for r in caplog.records if r.name == "platform.access"]
    assert len(records) == 1
    line = json.loads(_json_formatter().format(records[0]))
    assert line["event"] == "request"
    assert line["request_id"] == "log-check-1"
    assert line["tenant"] == tenant_a.schema
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/info"
    assert line["status"] == response.status_code == 200
    assert line["duration_ms"] >= 0
    assert line["user"] == tenant_a.admin().pk


@pytest.mark.django_db
def test_cors_preflight_from_allowed_origin(api: APIClient, tenant_a, settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = api.options(
        "/api/v1/info",
        HTTP_HOST=tenant_a.host,
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = api.get("/api/v1/info", HTTP_HOST=tenant_a.host, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
