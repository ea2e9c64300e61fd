"""The e-mailed reset link is built in a worker, without a request to copy the host from:
it carries PLATFORM_URL_SCHEME and PLATFORM_URL_PORT (local settings: http, WEB_PORT)."""

from __future__ import annotations

import pytest
from django.core import mail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def _reset_mail_body(api_a, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.call("post", "/api/v1/auth/password/reset", {"email": "member@alpha.test"})
    assert response.status_code == 200
    [message] = mail.outbox
    return str(message.body)


def test_the_reset_link_keeps_the_local_servers_scheme_and_port(
    api_a, member_a, tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PLATFORM_URL_SCHEME = "http"
    settings.PLATFORM_URL_PORT = 8000

    body = _reset_mail_body(api_a, django_capture_on_commit_callbacks)

    assert f"http://{tenant_a.host}:8000/reset-password?token=" in body


def test_without_a_port_the_link_names_the_host_alone(
    api_a, member_a, tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PLATFORM_URL_PORT = None

    body = _reset_mail_body(api_a, django_capture_on_commit_callbacks)

    assert f"https://{tenant_a.host}/reset-password?token=" in body
