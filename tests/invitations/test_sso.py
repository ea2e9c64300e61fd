"""A tenant that requires single sign-on: the invitation is honoured at SSO sign-in instead."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.invitations.models import Invitation
from apps.organizations.models import Membership
from apps.rbac.models import RoleAssignment
from apps.sso.models import ExternalIdentity
from tests.invitations.conftest import ACCEPT, NEW_PASSWORD, link_token, mails_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def sso_required(make_provider):
    return make_provider(sso_required=True)


def test_accepting_with_a_password_is_refused_where_sso_is_required(
    api_a, tenant_a, invite, sso_required
) -> None:
    invite("pat@corp.test")
    [message] = mails_to("pat@corp.test")
    assert "identity provider" in message.body
    response = api_a.call("post", ACCEPT, {"token": link_token(message), "password": NEW_PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "SSO_REQUIRED"
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="pat@corp.test").exists()
        assert Invitation.objects.get(email="pat@corp.test").status == "pending"


def test_sso_sign_in_with_the_invited_address_creates_the_invited_user(
    api_a, tenant_a, invite, sso_required, sign_in, editors, team
) -> None:
    # The provider does not provision anyone (jit off): only the invitation lets Pat in.
    assert invite("pat@corp.test", roles=["Editors"], organization_id=team.pk).status_code == 201
    result = sign_in.run()
    assert set(result) == {"code"}, result
    exchanged = sign_in.exchange(result["code"])
    assert exchanged.status_code == 200, exchanged.content
    me = api_a.call("get", "/api/v1/users/me", token=exchanged.json()["data"]["access_token"])
    assert me.json()["data"]["email"] == "pat@corp.test"
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="pat@corp.test")
        assert not user.has_usable_password()
        assert RoleAssignment.objects.filter(user=user, role=editors).exists()
        assert Membership.objects.filter(user=user, organization=team).exists()
        assert ExternalIdentity.objects.filter(user=user, subject="op-user-1").exists()
        assert Invitation.objects.get(email="pat@corp.test").status == "accepted"


def test_without_an_invitation_sso_sign_in_still_finds_no_account(
    tenant_a, sso_required, sign_in
) -> None:
    result = sign_in.run()
    assert result == {"error": "no_account"}
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="pat@corp.test").exists()


def test_a_revoked_invitation_is_not_honoured_at_sso_sign_in(
    api_a, tenant_a, invite, owner_token, sso_required, sign_in
) -> None:
    invitation_id = invite("pat@corp.test").json()["data"]["id"]
    api_a.call("post", f"/api/v1/invitations/{invitation_id}/revoke", token=owner_token)
    assert sign_in.run() == {"error": "no_account"}
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="pat@corp.test").exists()
