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

from apps.accounts.services.sessions import ClientInfo, session_start
from apps.core.error_handling import classify
from apps.notifications.models import NotificationBatch
from apps.tenants.models import Tenant

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
        pair = session_start(
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


# ------------------------------------------------------------------ JSON nesting


def test_json_nested_1000_deep_is_400_for_an_anonymous_client(anonymous: Client) -> None:
    deep = "[" * 1000 + '"x"' + "]" * 1000  # more than json.dumps itself would nest
    response = post_json(anonymous, LOGIN, '{"email": ' + deep + ', "password": "x"}')

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BAD_REQUEST"
    assert error["message"] == "The JSON body is nested deeper than 64 levels."


def test_json_nested_100_000_deep_is_400(anonymous: Client) -> None:
    response = post_json(anonymous, LOGIN, "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert error_of(response)["code"] == "BAD_REQUEST"


def test_settings_nested_up_to_the_limit_are_accepted_and_one_more_is_not(
    owner: Client, tenant_a: Any
) -> None:
    # The body object is one level, "settings" another: 62 more fill the 64.
    accepted = patch_json(owner, "/api/v1/tenant", {"settings": {"deep": nested(62)}})
    refused = patch_json(owner, "/api/v1/tenant", {"settings": {"deep": nested(63)}})

    assert accepted.status_code == 200, accepted.content
    assert refused.status_code == 400
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.settings == {"deep": nested(62)}


# ------------------------------------------------------------------ NUL and surrogates


def patch_json(client: Client, path: str, body: Any) -> Any:
    return client.patch(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("settings_value", "details"),
    [
        ({"theme": "dark\u0000"}, {"settings": {"theme": ["Null characters are not allowed."]}}),
        ({"a\u0000b": "x"}, {"settings": ["A key here contains a null character."]}),
        (
            {"list": ["ok", {"deep": "\ud800"}]},
            {
                "settings": {
                    "list": {"1": {"deep": ["Unpaired surrogate characters are not allowed."]}}
                }
            },
        ),
    ],
    ids=["nul-value", "nul-key", "lone-surrogate"],
)
def test_unstorable_characters_in_tenant_settings_are_422_naming_them(
    owner: Client, tenant_a: Any, settings_value: dict[str, Any], details: dict[str, Any]
) -> None:
    before = dict(tenant_a.tenant.settings)

    response = patch_json(owner, "/api/v1/tenant", {"settings": settings_value})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] == details
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).settings == before


def test_nul_in_tenant_settings_from_the_platform_operator_is_422(
    operator_api: Any, tenant_a: Any
) -> None:
    response = operator_api.patch(
        f"/api/v1/tenants/{tenant_a.tenant.pk}",
        json.dumps({"settings": {"note": "\u0000"}}),
        content_type="application/json",
        HTTP_HOST="localhost",
    )

    assert response.status_code == 422
    assert error_of(response)["details"] == {
        "settings": {"note": ["Null characters are not allowed."]}
    }


def test_nul_in_notification_data_is_422_and_sends_nothing(owner: Client, tenant_a: Any) -> None:
    body = {
        "type": "welcome",
        "title": "Hello",
        "body": "Hi",
        "data": {"link": "https://example.test/\u0000"},
        "users": [tenant_a.admin().pk],
    }

    response = post_json(owner, "/api/v1/notifications/send", json.dumps(body))

    assert response.status_code == 422
    assert error_of(response)["details"] == {"data": {"link": ["Null characters are not allowed."]}}
    with tenant_context(tenant_a.tenant):
        assert not NotificationBatch.objects.exists()


def test_an_escaped_surrogate_pair_is_an_ordinary_character(owner: Client, tenant_a: Any) -> None:
    response = owner.patch(
        "/api/v1/tenant",
        '{"settings": {"mood": "\\ud83d\\ude00"}}',
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["settings"] == {"mood": "\U0001f600"}


def test_an_escaped_backslash_before_u0000_is_text_not_a_null(owner: Client) -> None:
    response = owner.patch(
        "/api/v1/tenant", '{"settings": {"path": "C:\\\\u0000"}}', content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["settings"] == {"path": "C:\\u0000"}


def test_a_raw_surrogate_decoded_from_another_charset_is_422(anonymous: Client) -> None:
    body = '{"email": "a@alpha.test", "password": "\ud800"}'.encode("utf-7")

    response = anonymous.generic(
        "POST", LOGIN, body, content_type="application/json; charset=utf-7"
    )

    assert response.status_code == 422
    assert error_of(response)["details"] == {
        "password": ["Unpaired surrogate characters are not allowed."]
    }


# ------------------------------------------------------------------ anything else a client sends


def test_more_query_parameters_than_django_parses_is_400(anonymous: Client) -> None:
    response = anonymous.get("/api/v1/info?" + "&".join(f"p{i}=1" for i in range(1001)))

    assert response.status_code == 400
    assert error_of(response)["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"email": "\xff\xfe", "password": "x"}', "application/json", 400),
        (b'{"email": "a@alpha.test", "password": NaN}', "application/json", 400),
        (b'{"email": 1' + b"0" * 5000 + b', "password": "x"}', "application/json", 400),
        (b'{"email": "a@alpha.test",', "application/json", 400),
        (b'"just a string"', "application/json", 422),
        (b"[]", "application/json", 422),
        (b'{"email": "a@alpha.test", "password": "x"}', "application/json; charset=rot13", 400),
        (b'{"email": "a@alpha.test", "password": "x"}', "application/json; charset=bz2_codec", 400),
        (b"email=a%40alpha.test&password=x", "application/x-www-form-urlencoded", 415),
        (b'{"email": "\\ud800@alpha.test", "password": "\\u0000"}', "application/json", 422),
    ],
    ids=[
        "invalid-utf8",
        "nan",
        "5000-digit-number",
        "truncated",
        "a-string",
        "a-list",
        "rot13-charset",
        "bz2-charset",
        "form",
        "surrogate-and-nul",
    ],
)
def test_hostile_login_bodies_get_a_clear_4xx(
    anonymous: Client, body: bytes, content_type: str, status: int
) -> None:
    response = anonymous.generic("POST", LOGIN, body, content_type=content_type)

    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["message"]
    assert "sys.set_int_max_str_digits" not in error["message"]


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
