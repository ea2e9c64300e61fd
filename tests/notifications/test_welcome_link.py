"""The welcome mail tells a new user where to sign in, on their tenant's host and port."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django_tenants.utils import tenant_context

from apps.notifications.consumers import welcome_send_task
from tests.accounts.factories import make_user

pytestmark = pytest.mark.usefixtures("eager_tasks")


def _welcome_body(tenant_a, user_id: int, capture) -> str:
    mail.outbox.clear()
    with tenant_context(tenant_a.tenant), capture(execute=True):
        welcome_send_task.delay(str(uuid.uuid4()), user_id)
    (message,) = mail.outbox
    return str(message.body)


def _welcome_html() -> str:
    (message,) = mail.outbox
    assert isinstance(message, EmailMultiAlternatives)
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return str(html)


@pytest.mark.django_db
def test_a_staff_user_is_sent_to_the_tenants_admin(
    tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PLATFORM_URL_SCHEME = "http"
    settings.PLATFORM_URL_PORT = 8000
    with tenant_context(tenant_a.tenant):
        user = make_user(email="staffer@alpha.test", is_staff=True)

    body = _welcome_body(tenant_a, user.pk, django_capture_on_commit_callbacks)

    assert f"Sign in with this address at http://{tenant_a.host}:8000/admin/" in body
    assert "no password yet" not in body
    assert f'<a href="http://{tenant_a.host}:8000/admin/"' in _welcome_html()


@pytest.mark.django_db
def test_others_are_sent_to_the_api_docs_and_told_when_they_have_no_password(
    tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PLATFORM_URL_SCHEME = "https"
    settings.PLATFORM_URL_PORT = None
    with tenant_context(tenant_a.tenant):
        user = make_user(email="sso-only@alpha.test", is_staff=False)
        user.set_unusable_password()
        user.save(update_fields=["password"])

    body = _welcome_body(tenant_a, user.pk, django_capture_on_commit_callbacks)

    assert f"at https://{tenant_a.host}/api/docs/ (it has no password yet" in body


@pytest.mark.django_db
def test_sign_in_url_points_the_link_at_a_front_end(
    tenant_a, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PLATFORM_URL_SCHEME = "https"
    settings.PLATFORM_URL_PORT = None
    settings.SIGN_IN_URL = "{scheme}://{host}/login"
    with tenant_context(tenant_a.tenant):
        user = make_user(email="front@alpha.test")

    assert f"at https://{tenant_a.host}/login" in _welcome_body(
        tenant_a, user.pk, django_capture_on_commit_callbacks
    )
