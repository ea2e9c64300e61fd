"""Bearer API requests skip the browser's middleware (sessions, request.user from the session,
messages, static files); cookie-authenticated requests keep all of it."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django_tenants.utils import tenant_context

from apps.core.middleware import bearer_api_request


@pytest.mark.parametrize(
    ("path", "authorization", "expected"),
    [
        ("/api/v1/users/me", "Bearer abc", True),
        ("/api/v1/users/me", "bearer abc", True),
        ("/health/ready", "Bearer abc", True),
        ("/api/v1/users/me", "", False),
        ("/api/v1/users/me", "Basic dXNlcjpwdw==", False),
        ("/api/v1/users/me", "Bearerabc", False),
        ("/admin/", "Bearer abc", False),
        ("/static/admin/css/base.css", "Bearer abc", False),
    ],
)
def test_which_requests_count_as_bearer_api_requests(path, authorization, expected) -> None:
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    assert bearer_api_request(RequestFactory().get(path, **extra)) is expected


@pytest.mark.django_db
def test_a_bearer_request_gets_no_session(api_a, member_a) -> None:
    pair = api_a.login("member@alpha.test")
    response = api_a.call("get", "/api/v1/users/me", token=pair["access_token"])
    assert response.status_code == 200
    assert response.json()["data"]["email"] == "member@alpha.test"
    assert not hasattr(response.wsgi_request, "session")
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies


@pytest.mark.django_db
def test_a_session_never_stands_in_for_a_bad_bearer_token(
    api_a, member_a, staff_a, tenant_a
) -> None:
    """Signed in to the admin (a session) and sending a broken token: a 401, not the session's
    user; with a good token, the token's user, whoever the session belongs to."""
    with tenant_context(tenant_a.tenant):
        api_a.client.force_login(staff_a)
    assert api_a.call("get", "/api/v1/users/me").json()["data"]["email"] == "staff@alpha.test"
    assert api_a.call("get", "/api/v1/users/me", token="not-a-token").status_code == 401
    pair = api_a.login("member@alpha.test")
    me = api_a.call("get", "/api/v1/users/me", token=pair["access_token"])
    assert me.json()["data"]["email"] == "member@alpha.test"


@pytest.mark.django_db
def test_session_requests_keep_sessions_and_csrf(api_a, staff_a, tenant_a) -> None:
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    with tenant_context(tenant_a.tenant):
        client.force_login(staff_a)
    me = client.get("/api/v1/users/me", HTTP_HOST=api_a.host)
    assert me.status_code == 200 and hasattr(me.wsgi_request, "session")
    refused = client.patch(
        "/api/v1/users/me", {"full_name": "X"}, format="json", HTTP_HOST=api_a.host
    )
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
