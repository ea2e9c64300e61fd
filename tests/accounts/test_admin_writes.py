"""The admin's user and session writes go through the accounts services: a user added in
a tenant's admin gets the user.created event (the welcome mail) and an audit row; an
operator added in the public admin is created (no roles there); revoking sessions is
audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.audit.models import AuditEvent
from apps.jobs.models import OutboxEvent
from tests.accounts.factories import PASSWORD, make_user

NEW = {
    "email": "New.Person@Alpha.test",
    "username": "newperson",
    "full_name": "New Person",
    "usable_password": "true",
    "password1": "a-long-admin-chosen-passphrase",
    "password2": "a-long-admin-chosen-passphrase",
}


@pytest.mark.django_db
def test_a_user_added_in_the_tenant_admin_gets_the_event_and_the_audit_row(tenant_a) -> None:
    client = tenant_a.admin_client()
    response = client.post("/admin/accounts/user/add/", NEW, HTTP_HOST=tenant_a.host)
    assert response.status_code == 302, response.content.decode()[:3000]
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="new.person@alpha.test")
        assert OutboxEvent.objects.filter(event_type="user.created", data__user_id=user.pk).exists()
        row = AuditEvent.objects.get(action="user.created", target_id=str(user.pk))
        assert row.actor_email == tenant_a.admin_email
        # Every user of a tenant starts with the member role, as through the API.
        assert user.role_assignments.filter(role__system_key="member").exists()


@pytest.mark.django_db
def test_an_operator_added_in_the_public_admin_is_created(operator) -> None:
    client = Client()
    client.force_login(operator)
    data = {**NEW, "email": "second-operator@localhost", "username": "ops2"}
    response = client.post("/admin/accounts/user/add/", data, HTTP_HOST="localhost")
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="second-operator@localhost")
    assert AuditEvent.objects.filter(action="user.created", target_id=str(user.pk)).exists()


@pytest.mark.django_db
def test_revoking_sessions_in_the_admin_is_audited(tenant_a, api) -> None:
    from tests.accounts.conftest import Api

    with tenant_context(tenant_a.tenant):
        member = make_user(email="member@alpha.test", username="member")
    client_api = Api(api, tenant_a.host)
    token = client_api.login("member@alpha.test", PASSWORD)["access_token"]
    with tenant_context(tenant_a.tenant):
        session = Session.objects.get(user=member)

    client = tenant_a.admin_client()
    response = client.post(
        "/admin/accounts/session/",
        {"action": "revoke", "_selected_action": [str(session.pk)]},
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302
    assert client_api.call("get", "/api/v1/users/me", token=token).status_code == 401
    with tenant_context(tenant_a.tenant):
        row = AuditEvent.objects.get(action="session.revoked", target_id=str(session.pk))
        assert row.changes["user_id"] == member.pk
        assert row.actor_email == tenant_a.admin_email
