"""SSO required: passwords refused for the tenant's users, except its break-glass accounts."""

from __future__ import annotations

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from tests.accounts.factories import PASSWORD, make_user
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def sso_required(tenant_a, make_provider):
    with tenant_context(tenant_a.tenant):
        owner = make_user(email="owner.bg@alpha.test", username="owner-bg")
        provider = make_provider(sso_required=True, break_glass_user_ids=[owner.pk])
    return provider


def test_sso_required_refuses_password_login_with_403(api_a, member_a, sso_required):
    response = api_a.call(
        "post", "/api/v1/auth/login", {"email": member_a.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "SSO_REQUIRED"


def test_sso_required_still_says_401_for_a_wrong_password(api_a, member_a, sso_required):
    response = api_a.call("post", "/api/v1/auth/login", {"email": member_a.email, "password": "x"})
    assert response.status_code == 401


def test_break_glass_user_may_still_use_a_password(api_a, sso_required):
    assert api_a.login("owner.bg@alpha.test")["access_token"]


def test_a_disabled_provider_requires_nothing(tenant_a, api_a, member_a, sso_required):
    with tenant_context(tenant_a.tenant):
        sso_required.enabled = False
        sso_required.save()
    assert api_a.login(member_a.email)["access_token"]


@pytest.mark.usefixtures("eager_tasks")
def test_sso_required_reset_answers_the_same_and_sends_nothing(
    api_a, member_a, sso_required, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        refused = api_a.call("post", "/api/v1/auth/password/reset", {"email": member_a.email})
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        allowed = api_a.call(
            "post", "/api/v1/auth/password/reset", {"email": "owner.bg@alpha.test"}
        )
    assert refused.status_code == allowed.status_code == 200
    assert refused.json()["data"] == allowed.json()["data"]
    assert [m.to for m in mail.outbox] == [["owner.bg@alpha.test"]]  # break-glass still can


def test_sso_required_does_not_touch_another_tenant(api_b, tenant_b, sso_required):
    assert api_b.login(tenant_b.admin_email, ADMIN_PASSWORD)["access_token"]


def test_sso_required_refuses_the_admins_password_login_too(tenant_a, sso_required):
    from django.test import Client

    with tenant_context(tenant_a.tenant):
        make_user(email="staffer.sso@alpha.test", username="staffer-sso", is_staff=True)
    client = Client()
    page = client.post(
        "/admin/login/",
        {"username": "staffer.sso@alpha.test", "password": PASSWORD},
        HTTP_HOST=tenant_a.host,
    )
    assert page.status_code == 200  # the form again, with its error: not signed in
    assert "_auth_user_id" not in client.session


def test_the_admin_login_page_points_to_single_sign_on(tenant_a, make_provider):
    from django.test import Client

    with tenant_context(tenant_a.tenant):
        make_provider()  # without one, the page offers no SSO (tests/core/test_admin_site.py)
    page = Client().get("/admin/login/?next=/admin/", HTTP_HOST=tenant_a.host)
    assert page.status_code == 200
    assert b"/admin/sso/?next=/admin/" in page.content
    public = Client().get("/admin/login/", HTTP_HOST="localhost")
    assert public.status_code == 200 and b"/admin/sso/" not in public.content
