"""Hostile input gets a clear error in the envelope and changes nothing: never a 500.

Bodies over the size limit (413, before they are read), JSON nested past the depth limit
(400), U+0000 or lone surrogates in any JSON string PostgreSQL would be given (422 naming
the field), and other odd requests unauthenticated clients can send.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.services.sessions import ClientInfo, session_start_for
from apps.core.error_handling import classify

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
MiB = 1024 * 1024


@pytest.fixture
def anonymous(client_ip: str, tenant_a: Any) -> Client:
    return Client(REMOTE_ADDR=client_ip, HTTP_HOST=tenant_a.host, raise_request_exception=False)


@pytest.fixture
def owner(client_ip: str, tenant_a: Any) -> Client:
    """The tenant's owner, signed in with a bearer token."""
    with tenant_context(tenant_a.tenant):
        pair = session_start_for(
            user=tenant_a.admin(), client=ClientInfo(ip_address=None, user_agent="test")
        )
    return Client(
        REMOTE_ADDR=client_ip,
        HTTP_HOST=tenant_a.host,
        HTTP_AUTHORIZATION=f"Bearer {pair.access_token}",
        raise_request_exception=False,
    )


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    assert "Traceback" not in response.content.decode()
    return dict(body["error"])


def post_json(client: Client, path: str, body: str | bytes, **extra: Any) -> Any:
    return client.post(path, body, content_type="application/json", **extra)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


# ------------------------------------------------------------------ body size


def test_a_20_mib_login_body_is_413_before_it_is_read(anonymous: Client) -> None:
    body = json.dumps({"email": "a@alpha.test", "password": "x" * (20 * MiB)})

    response = post_json(anonymous, LOGIN, body)

    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert error["details"] == {"max_bytes": 2_621_440}
    assert response.wsgi_request.environ["wsgi.input"].read_started is False
    assert "X-Request-ID" in response


def test_a_3_mib_role_body_is_413_and_creates_nothing(owner: Client, tenant_a: Any) -> None:
    from apps.rbac.models import Role

    with tenant_context(tenant_a.tenant):
        roles_before = Role.objects.count()
    body = json.dumps({"name": "huge", "description": "x" * (3 * MiB), "permissions": []})

    response = post_json(owner, "/api/v1/roles", body)

    assert response.status_code == 413
    assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"
    assert "X-RateLimit-Limit" in response  # counted and answered like any API request
    with tenant_context(tenant_a.tenant):
        assert Role.objects.count() == roles_before


def test_a_body_within_the_limit_is_read_as_usual(anonymous: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"email": "a@alpha.test", "password": "x" * 50})

    assert post_json(anonymous, LOGIN, body).status_code == 401
    assert post_json(anonymous, LOGIN, body + " " * 40).status_code == 413


def test_a_body_django_refuses_while_a_view_reads_it_is_413() -> None:
    # What a body over the limit sent without a Content-Length (ASGI) raises in a view.
    info = classify(RequestDataTooBig("Request body exceeded"))

    assert info is not None
    assert (info.status, info.code) == (413, "PAYLOAD_TOO_LARGE")


# ------------------------------------------------------------------ anything else a client sends


def test_more_query_parameters_than_django_parses_is_400(anonymous: Client) -> None:
    response = anonymous.get("/api/v1/info?" + "&".join(f"p{i}=1" for i in range(1001)))

    assert response.status_code == 400
    assert error_of(response)["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/users/abc", {}),
        ("/api/v1/users/" + "9" * 30, {}),
        ("/api/v1/users?page=" + "9" * 30, {}),
        ("/api/v1/users?page=" + "9" * 5000, {}),
        ("/api/v1/users?search=a%00b", {}),
        ("/api/v1/auth/oidc/a%00b/authorize?redirect_uri=https://app.test/", {}),
        ("/api/v1/info", {"HTTP_AUTHORIZATION": "Bearer " + "a." * 5000}),
        ("/api/v1/info", {"HTTP_ACCEPT": "application/xml"}),
        ("/api/v1/info", {"HTTP_X_REQUEST_ID": "\x00" * 5}),
        ("/api/v1/info", {"HTTP_X_SOMETHING": "a" * 100_000}),
    ],
)
def test_odd_requests_without_valid_credentials_never_500(
    anonymous: Client, path: str, extra: dict[str, Any]
) -> None:
    response = anonymous.get(path, **extra)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert error_of(response)["code"]
