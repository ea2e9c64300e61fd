"""Invitations over the real API: invite, the mailed link, accept; every way a link is refused."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.invitations.models import Invitation
from apps.jobs.models import OutboxEvent
from apps.organizations.models import Membership
from apps.rbac.models import RoleAssignment
from tests.invitations.conftest import ACCEPT, INVITATIONS, NEW_PASSWORD, link_token, mails_to

pytestmark = pytest.mark.django_db


def _accept(api, token: str, password: str = NEW_PASSWORD, full_name: str = "Nia Newcomer"):
    return api.call("post", ACCEPT, {"token": token, "password": password, "full_name": full_name})


def _refused_token(response) -> None:
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "INVITATION_INVALID" and "token" in error["details"]


def test_invite_mail_accept_signs_the_invitee_in_with_the_roles_and_the_membership(
    api_a, tenant_a, invite, editors, team
) -> None:
    response = invite("Nia@Alpha.test", roles=["editors"], organization_id=team.pk)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["email"] == "nia@alpha.test" and data["status"] == "pending"
    assert [r["name"] for r in data["roles"]] == ["Editors"]
    assert data["organization_id"] == team.pk

    [message] = mails_to("nia@alpha.test")
    assert tenant_a.tenant.name in message.subject
    assert f"://{tenant_a.host}" in message.body
    token = link_token(message)
    with tenant_context(tenant_a.tenant):
        invitation = Invitation.objects.get(pk=data["id"])
        # Only the token's hash is kept, and the outbox never held the token.
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert not any(token in str(e.data) for e in OutboxEvent.objects.all())

    accepted = _accept(api_a, token)
    assert accepted.status_code == 200, accepted.content
    access = accepted.json()["data"]["access_token"]
    me = api_a.call("get", "/api/v1/users/me", token=access)
    assert me.status_code == 200 and me.json()["data"]["email"] == "nia@alpha.test"
    assert me.json()["data"]["full_name"] == "Nia Newcomer"

    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="nia@alpha.test")
        assert user.email_verified
        roles = set(
            RoleAssignment.objects.filter(user=user, organization=None).values_list(
                "role__name", flat=True
            )
        )
        assert roles == {"Editors", "member"}
        assert Membership.objects.filter(user=user, organization=team).exists()
        invitation.refresh_from_db()
        assert invitation.status == "accepted" and invitation.accepted_user_id == user.pk
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {"invitation.created", "invitation.accepted", "user.created"} <= actions
        assert OutboxEvent.objects.filter(event_type="invitation.accepted").exists()

    # Single use: the same link again is refused, and nothing more is written.
    _refused_token(_accept(api_a, token))
    with tenant_context(tenant_a.tenant):
        assert User.objects.filter(email="nia@alpha.test").count() == 1


def test_an_expired_link_is_refused_and_writes_nothing(api_a, tenant_a, invite) -> None:
    invite("late@alpha.test")
    token = link_token(mails_to("late@alpha.test")[0])
    with tenant_context(tenant_a.tenant):
        Invitation.objects.filter(email="late@alpha.test").update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        users = User.objects.count()
    _refused_token(_accept(api_a, token))
    with tenant_context(tenant_a.tenant):
        assert User.objects.count() == users
        assert Invitation.objects.get(email="late@alpha.test").status == "expired"


def test_a_revoked_link_is_refused(api_a, tenant_a, invite, owner_token) -> None:
    invitation_id = invite("gone@alpha.test").json()["data"]["id"]
    token = link_token(mails_to("gone@alpha.test")[0])
    revoked = api_a.call("post", f"{INVITATIONS}/{invitation_id}/revoke", token=owner_token)
    assert revoked.status_code == 200 and revoked.json()["data"]["status"] == "revoked"
    _refused_token(_accept(api_a, token))
    # Revoking again changes nothing; a revoked invitation cannot be resent.
    again = api_a.call("post", f"{INVITATIONS}/{invitation_id}/revoke", token=owner_token)
    assert again.status_code == 200
    resend = api_a.call("post", f"{INVITATIONS}/{invitation_id}/resend", token=owner_token)
    assert resend.status_code == 409
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="gone@alpha.test").exists()
        assert AuditEvent.objects.filter(action="invitation.revoked").count() == 1


def test_resending_voids_the_old_link_and_the_new_one_works(
    api_a, tenant_a, invite, owner_token, django_capture_on_commit_callbacks
) -> None:
    invitation_id = invite("twice@alpha.test").json()["data"]["id"]
    old = link_token(mails_to("twice@alpha.test")[0])
    with django_capture_on_commit_callbacks(execute=True):
        resent = api_a.call("post", f"{INVITATIONS}/{invitation_id}/resend", token=owner_token)
    assert resent.status_code == 200, resent.content
    _first, second = mails_to("twice@alpha.test")
    new = link_token(second)
    assert new != old
    _refused_token(_accept(api_a, old))
    assert _accept(api_a, new).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert AuditEvent.objects.filter(action="invitation.resent").exists()


def test_an_address_that_is_a_user_or_already_invited_is_a_conflict(
    api_a, tenant_a, invite, member_a
) -> None:
    taken = invite(member_a.email)
    assert taken.status_code == 409 and "email" in taken.json()["error"]["details"]
    assert invite("once@alpha.test").status_code == 201
    assert invite("ONCE@alpha.test").status_code == 409
    # Once expired, a new invitation replaces the old one (revoked).
    with tenant_context(tenant_a.tenant):
        Invitation.objects.filter(email="once@alpha.test").update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    assert invite("once@alpha.test").status_code == 201
    with tenant_context(tenant_a.tenant):
        statuses = sorted(i.status for i in Invitation.objects.filter(email="once@alpha.test"))
        assert statuses == ["pending", "revoked"]


def test_another_tenants_token_is_refused(api_a, api_b, tenant_a, tenant_b, invite) -> None:
    invite("cross@alpha.test")
    token = link_token(mails_to("cross@alpha.test")[0])
    _refused_token(_accept(api_b, token))
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant.tenant):
            assert not User.objects.filter(email="cross@alpha.test").exists()


def test_an_unknown_token_and_a_weak_password_write_nothing(api_a, tenant_a, invite) -> None:
    _refused_token(_accept(api_a, "not-a-token"))
    invite("weak@alpha.test")
    token = link_token(mails_to("weak@alpha.test")[0])
    weak = _accept(api_a, token, password="123")
    assert weak.status_code == 422 and "password" in weak.json()["error"]["details"]
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="weak@alpha.test").exists()
        assert Invitation.objects.get(email="weak@alpha.test").status == "pending"
    assert _accept(api_a, token).status_code == 200  # the link still works


# ------------------------------------------------------------------ escalation


def test_a_user_manager_cannot_invite_into_a_role_above_their_own(
    api_a, tenant_a, invite, holder, editors
) -> None:
    # users.manage and roles.manage everywhere, but not audit.view, which Editors holds.
    holder("manager", ["users.manage", "roles.manage", "users.view"])
    token = api_a.login("manager@alpha.test")["access_token"]
    refused = invite("climb@alpha.test", token=token, roles=[editors.pk])
    assert refused.status_code == 403, refused.content
    assert "audit.view" in refused.json()["error"]["message"]
    # Without roles.manage no role at all; the owner role least of all.
    holder("plain", ["users.manage"])
    plain = api_a.login("plain@alpha.test")["access_token"]
    assert invite("climb@alpha.test", token=plain, roles=["owner"]).status_code == 403
    # Without a role, users.manage is enough.
    assert invite("climb@alpha.test", token=plain).status_code == 201
    with tenant_context(tenant_a.tenant):
        assert Invitation.objects.filter(email="climb@alpha.test").count() == 1
    assert len(mails_to("climb@alpha.test")) == 1


def test_a_scoped_user_manager_cannot_invite(api_a, invite, holder, team) -> None:
    holder("scoped", ["users.manage", "organizations.manage"], organization=team)
    token = api_a.login("scoped@alpha.test")["access_token"]
    refused = invite("inside@alpha.test", token=token, organization_id=team.pk)
    assert refused.status_code == 403
    assert mail.outbox == []


def test_an_inviter_who_lost_the_reach_makes_the_invitation_stale(
    api_a, tenant_a, invite, holder, editors
) -> None:
    inviter = holder("lead", ["users.manage", "roles.manage", "users.view", "audit.view"])
    token = api_a.login("lead@alpha.test")["access_token"]
    assert invite("later@alpha.test", token=token, roles=["Editors"]).status_code == 201
    with tenant_context(tenant_a.tenant):
        RoleAssignment.objects.filter(user=inviter).delete()
    link = link_token(mails_to("later@alpha.test")[0])
    stale = _accept(api_a, link)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "INVITATION_STALE"
    with tenant_context(tenant_a.tenant):
        assert not User.objects.filter(email="later@alpha.test").exists()


# ------------------------------------------------------------------ the list


def test_the_list_filters_by_status_and_pages(api_a, tenant_a, invite, owner_token) -> None:
    for n in range(3):
        invite(f"listed{n}@alpha.test", roles=["admin"])
    last = invite("revoked@alpha.test").json()["data"]["id"]
    api_a.call("post", f"{INVITATIONS}/{last}/revoke", token=owner_token)

    page = api_a.call("get", f"{INVITATIONS}?page_size=2", token=owner_token).json()["data"]
    assert (page["total"], len(page["items"]), page["total_pages"]) == (4, 2, 2)
    pending = api_a.call("get", f"{INVITATIONS}?status=pending", token=owner_token)
    assert {i["email"] for i in pending.json()["data"]["items"]} == {
        f"listed{n}@alpha.test" for n in range(3)
    }
    revoked = api_a.call("get", f"{INVITATIONS}?status=revoked", token=owner_token)
    assert [i["email"] for i in revoked.json()["data"]["items"]] == ["revoked@alpha.test"]
    bad = api_a.call("get", f"{INVITATIONS}?status=lost", token=owner_token)
    assert bad.status_code == 422
    assert "token_hash" not in str(pending.json())


def test_the_list_costs_the_same_queries_at_any_size(api_a, invite, owner_token) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def listed() -> int:
        api_a.call("get", INVITATIONS, token=owner_token)  # warm the caches
        with CaptureQueriesContext(connection) as queries:
            response = api_a.call("get", INVITATIONS, token=owner_token)
        assert response.status_code == 200
        return len(queries)

    invite("few0@alpha.test", roles=["admin"])
    few = listed()
    for n in range(1, 6):
        invite(f"few{n}@alpha.test", roles=["admin"])
    assert listed() == few


def test_the_list_needs_users_manage(api_a, holder) -> None:
    holder("viewer", ["users.view"])
    token = api_a.login("viewer@alpha.test")["access_token"]
    assert api_a.call("get", INVITATIONS, token=token).status_code == 403


def test_accepting_is_rate_limited_per_client_address(api_a) -> None:
    answers = [_accept(api_a, f"guess-{n}").status_code for n in range(11)]
    assert answers[:10] == [422] * 10 and answers[10] == 429
