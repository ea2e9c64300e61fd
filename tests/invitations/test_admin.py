"""The tenant admin's invitations page: resend and revoke go through the services."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.invitations.models import Invitation
from tests.invitations.conftest import ACCEPT, NEW_PASSWORD, link_token, mails_to

pytestmark = pytest.mark.django_db
PAGE = "/admin/invitations/invitation/"


def test_the_admin_lists_invitations_without_their_hashes(tenant_a, invite) -> None:
    invite("listed@alpha.test")
    page = tenant_a.admin_client().get(PAGE, HTTP_HOST=tenant_a.host)
    assert page.status_code == 200
    assert b"listed@alpha.test" in page.content and b"token_hash" not in page.content


def test_the_admin_resends_and_revokes_through_the_services(
    api_a, tenant_a, invite, django_capture_on_commit_callbacks
) -> None:
    first = invite("one@alpha.test").json()["data"]["id"]
    second = invite("two@alpha.test").json()["data"]["id"]
    old = link_token(mails_to("one@alpha.test")[0])
    client = tenant_a.admin_client()

    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(
            PAGE, {"action": "resend", "_selected_action": [str(first)]}, HTTP_HOST=tenant_a.host
        )
    assert resent.status_code == 302
    assert len(mails_to("one@alpha.test")) == 2
    new = link_token(mails_to("one@alpha.test")[1])
    assert api_a.call("post", ACCEPT, {"token": old, "password": NEW_PASSWORD}).status_code == 422

    revoked = client.post(
        PAGE, {"action": "revoke", "_selected_action": [str(second)]}, HTTP_HOST=tenant_a.host
    )
    assert revoked.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert Invitation.objects.get(pk=second).status == "revoked"
        rows = AuditEvent.objects.filter(action__in=["invitation.resent", "invitation.revoked"])
        assert {(r.action, r.actor_email) for r in rows} == {
            ("invitation.resent", tenant_a.admin_email),
            ("invitation.revoked", tenant_a.admin_email),
        }
    assert api_a.call("post", ACCEPT, {"token": new, "password": NEW_PASSWORD}).status_code == 200
