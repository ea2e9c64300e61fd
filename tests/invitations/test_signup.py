"""Self sign-up: off by default, the tenant's settings, the verification link, sign-in after."""

from __future__ import annotations

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.rbac.models import Role, RoleAssignment
from apps.tenants.models import Tenant
from tests.accounts.factories import PASSWORD
from tests.invitations.conftest import NEW_PASSWORD, link_token, mails_to

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

SIGNUP = "/api/v1/auth/signup"
VERIFY = "/api/v1/auth/email/verify"
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def signup_on(tenant_a):
    """Sign-up open to alpha.test and beta.example, with a default role."""
    with tenant_context(tenant_a.tenant):
        Role.objects.create(name="Readers", permissions=["users.view"])
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(
        settings={
            "signup": {
                "enabled": True,
                "allowed_domains": ["alpha.test", "beta.example"],
                "default_role": "readers",
            }
        }
    )


@pytest.fixture
def sign_up(api_a, django_capture_on_commit_callbacks):
    def send(email: str, password: str = NEW_PASSWORD, full_name: str = "Sam Signup"):
        with django_capture_on_commit_callbacks(execute=True):
            return api_a.call(
                "post", SIGNUP, {"email": email, "password": password, "full_name": full_name}
            )

    return send


def _login(api, email: str, password: str = NEW_PASSWORD):
    return api.call("post", LOGIN, {"email": email, "password": password})


def test_sign_up_is_off_by_default(sign_up, tenant_a) -> None:
    response = sign_up("sam@alpha.test")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "SIGNUP_DISABLED"
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="sam@alpha.test").exists()
    assert mail.outbox == []


def test_sign_up_verify_then_sign_in(api_a, tenant_a, signup_on, sign_up) -> None:
    response = sign_up("Sam@Alpha.test")
    assert response.status_code == 202, response.content
    [message] = mails_to("sam@alpha.test")
    assert f"://{tenant_a.host}" in message.body

    # Before the link: only someone who knows the password learns why.
    refused = _login(api_a, "sam@alpha.test")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
    assert _login(api_a, "sam@alpha.test", "wrong-password-here").status_code == 401

    verified = api_a.call("post", VERIFY, {"token": link_token(message)})
    assert verified.status_code == 200, verified.content
    assert _login(api_a, "sam@alpha.test").status_code == 200
    again = api_a.call("post", VERIFY, {"token": link_token(message)})
    assert again.status_code == 422 and "token" in again.json()["error"]["details"]

    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="sam@alpha.test")
        assert user.email_verified and user.full_name == "Sam Signup"
        roles = set(RoleAssignment.objects.filter(user=user).values_list("role__name", flat=True))
        assert roles == {"member", "Readers"}
        actions = set(
            AuditEvent.objects.filter(target_id=str(user.pk)).values_list("action", flat=True)
        )
        assert {"user.created", "user.signed_up", "user.email_verified"} <= actions


def test_a_domain_the_tenant_does_not_allow_is_refused(tenant_a, signup_on, sign_up) -> None:
    response = sign_up("sam@elsewhere.test")
    assert response.status_code == 422
    assert "email" in response.json()["error"]["details"]
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="sam@elsewhere.test").exists()
    assert mail.outbox == []


def test_an_existing_account_gets_the_same_answer_and_nothing_changes(
    api_a, tenant_a, signup_on, sign_up, member_a
) -> None:
    existing = sign_up(member_a.email, password="another-password-99")
    fresh = sign_up("fresh@alpha.test")
    assert existing.status_code == fresh.status_code == 202
    assert existing.json()["data"] == fresh.json()["data"]
    assert mails_to(member_a.email) == []
    assert _login(api_a, member_a.email, PASSWORD).status_code == 200
    assert _login(api_a, member_a.email, "another-password-99").status_code == 401


def test_whoever_signed_up_first_with_anothers_address_gains_nothing(
    api_a, signup_on, sign_up
) -> None:
    assert sign_up("victim@alpha.test", password="attackers-password-1").status_code == 202
    assert sign_up("victim@alpha.test", password="owners-password-22").status_code == 202
    _attackers, owners = mails_to("victim@alpha.test")
    assert api_a.call("post", VERIFY, {"token": link_token(owners)}).status_code == 200
    assert _login(api_a, "victim@alpha.test", "owners-password-22").status_code == 200
    assert _login(api_a, "victim@alpha.test", "attackers-password-1").status_code == 401
    # The other link died with the one followed.
    assert api_a.call("post", VERIFY, {"token": link_token(_attackers)}).status_code == 422


def test_a_weak_password_is_refused_before_anything_is_written(
    tenant_a, signup_on, sign_up
) -> None:
    response = sign_up("weak@alpha.test", password="123")
    assert response.status_code == 422 and "password" in response.json()["error"]["details"]
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="weak@alpha.test").exists()


def test_sign_up_is_rate_limited_per_address(signup_on, sign_up) -> None:
    answers = [sign_up("often@alpha.test").status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]


# ------------------------------------------------------------------ the tenant's settings


@pytest.mark.parametrize(
    "signup",
    [
        "yes",
        {"enabled": "true"},
        {"enabled": True, "allowed_domains": "alpha.test"},
        {"enabled": True, "allowed_domains": ["Not A Domain"]},
        {"enabled": True, "surprise": 1},
        {"enabled": True, "default_role": "no such role"},
        {"enabled": True, "default_role": "owner"},
    ],
)
def test_bad_signup_settings_are_refused_and_nothing_is_saved(
    api_a, tenant_a, owner_token, signup
) -> None:
    response = api_a.call(
        "patch", "/api/v1/tenant", {"settings": {"signup": signup}}, token=owner_token
    )
    assert response.status_code == 422, response.content
    assert "settings" in response.json()["error"]["details"]
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).settings.get("signup") is None


def test_good_signup_settings_are_saved_and_shown(api_a, tenant_a, owner_token) -> None:
    signup = {"enabled": True, "allowed_domains": ["alpha.test"], "default_role": "admin"}
    response = api_a.call(
        "patch", "/api/v1/tenant", {"settings": {"signup": signup}}, token=owner_token
    )
    assert response.status_code == 200, response.content
    shown = api_a.call("get", "/api/v1/tenant", token=owner_token).json()["data"]
    assert shown["settings"]["signup"] == signup


def test_managers_see_who_is_unverified_and_the_cleanup_drops_spent_links(
    api_a, tenant_a, owner_token, signup_on, sign_up
) -> None:
    from apps.invitations.models import EmailVerification
    from apps.invitations.signup import verification_records_cleanup

    sign_up("pending@alpha.test")
    listed = api_a.call("get", "/api/v1/users?search=pending@alpha.test", token=owner_token)
    [user] = listed.json()["data"]["items"]
    assert user["email_verified"] is False
    token = link_token(mails_to("pending@alpha.test")[0])
    assert api_a.call("post", VERIFY, {"token": token}).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert verification_records_cleanup() == {"email_verifications": 1}
        assert not EmailVerification.objects.exists()
