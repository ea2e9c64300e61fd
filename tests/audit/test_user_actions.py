"""Each change to a user leaves exactly one audit row, in the same transaction, saying who
(the API caller), from where (their address) and in which request (X-Request-ID)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import PasswordResetToken, Session, User
from apps.accounts.services.users import users_purge
from apps.audit.models import AuditEvent
from apps.rbac.models import Role, RoleAssignment
from apps.tenants.models import Tenant
from tests.accounts.factories import PASSWORD, make_user
from tests.audit.conftest import error
from tests.rbac.factories import grant_role

USERS = "/api/v1/users"
NEW_PASSWORD = "an-entirely-new-passphrase-77"


def only_row(tenant_fixture, request_id: str) -> AuditEvent:
    """The one row the request wrote (failing if it wrote none, or more)."""
    with tenant_context(tenant_fixture.tenant):
        written = list(AuditEvent.objects.filter(request_id=request_id))
    assert len(written) == 1, [e.action for e in written]
    return written[0]


def assert_from_request(event: AuditEvent, *, actor: User | None, ip: str, request_id: str):
    assert event.actor_id == (actor.pk if actor else None)
    assert event.actor_email == (actor.email if actor else "")
    assert event.ip_address == ip
    assert event.request_id == request_id


# ------------------------------------------------------------------ users


@pytest.mark.django_db
def test_creating_a_user_records_who_from_where_and_what(
    api_a, staff_a, staff_token, tenant_a, client_ip
) -> None:
    response = api_a.call(
        "post",
        USERS,
        {
            "email": "New.Person@Alpha.test",
            "username": "newperson",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "full_name": "New Person",
        },
        token=staff_token,
        HTTP_X_REQUEST_ID="audit-create-1",
    )
    assert response.status_code == 201, response.content

    event = only_row(tenant_a, "audit-create-1")
    assert event.action == "user.created"
    assert (event.target_type, event.target_id) == ("user", str(response.json()["data"]["id"]))
    assert event.changes == {
        "email": "new.person@alpha.test",
        "username": "newperson",
        "full_name": "New Person",
        "is_active": True,
        "is_staff": False,
    }
    assert_from_request(event, actor=staff_a, ip=client_ip, request_id="audit-create-1")


@pytest.mark.django_db
def test_updating_a_user_records_old_and_new_of_the_changed_fields_only(
    api_a, staff_a, staff_token, member_a, tenant_a, client_ip
) -> None:
    response = api_a.call(
        "patch",
        f"{USERS}/{member_a.pk}",
        {"full_name": "Renamed Member", "is_staff": True, "username": "member"},
        token=staff_token,
        HTTP_X_REQUEST_ID="audit-update-1",
    )
    assert response.status_code == 200, response.content

    event = only_row(tenant_a, "audit-update-1")
    assert (event.action, event.target_id) == ("user.updated", str(member_a.pk))
    assert event.changes == {
        "full_name": [member_a.full_name, "Renamed Member"],
        "is_staff": [False, True],
    }
    assert_from_request(event, actor=staff_a, ip=client_ip, request_id="audit-update-1")

    # Nothing changed, nothing recorded.
    same = api_a.call(
        "patch",
        f"{USERS}/{member_a.pk}",
        {"full_name": "Renamed Member"},
        token=staff_token,
        HTTP_X_REQUEST_ID="audit-update-2",
    )
    assert same.status_code == 200
    with tenant_context(tenant_a.tenant):
        assert not AuditEvent.objects.filter(request_id="audit-update-2").exists()


@pytest.mark.django_db
def test_a_profile_edit_is_recorded_with_the_user_as_actor(
    api_a, member_a, tenant_a, client_ip
) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    response = api_a.call(
        "patch", f"{USERS}/me", {"username": "mem"}, token=token, HTTP_X_REQUEST_ID="audit-me-1"
    )
    assert response.status_code == 200
    event = only_row(tenant_a, "audit-me-1")
    assert event.action == "user.updated" and event.changes == {"username": ["member", "mem"]}
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-me-1")


@pytest.mark.django_db
def test_deleting_and_restoring_a_user_are_recorded(
    api_a, staff_a, staff_token, member_a, tenant_a, client_ip
) -> None:
    deleted = api_a.call(
        "delete", f"{USERS}/{member_a.pk}", token=staff_token, HTTP_X_REQUEST_ID="audit-del-1"
    )
    assert deleted.status_code == 204
    event = only_row(tenant_a, "audit-del-1")
    assert (event.action, event.target_type, event.target_id) == (
        "user.deleted",
        "user",
        str(member_a.pk),
    )
    assert_from_request(event, actor=staff_a, ip=client_ip, request_id="audit-del-1")

    restored = api_a.call(
        "post",
        f"{USERS}/{member_a.pk}/restore",
        token=staff_token,
        HTTP_X_REQUEST_ID="audit-restore-1",
    )
    assert restored.status_code == 200
    event = only_row(tenant_a, "audit-restore-1")
    assert (event.action, event.target_id) == ("user.restored", str(member_a.pk))
    assert_from_request(event, actor=staff_a, ip=client_ip, request_id="audit-restore-1")


@pytest.mark.django_db
def test_purging_records_one_row_per_user_by_the_system(tenant_a, rows) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):
        old = [
            make_user(email=f"old{n}@alpha.test", is_deleted=True, deleted_at=now - timedelta(40))
            for n in range(2)
        ]
        make_user(email="recent@alpha.test", is_deleted=True, deleted_at=now - timedelta(days=2))
        assert users_purge(older_than_days=30, now=now) == 2
    purged = rows(action="user.purged")
    assert sorted(e.target_id for e in purged) == sorted(str(u.pk) for u in old)
    for event in purged:
        assert event.actor_id is None and event.actor_email == "" and event.request_id == ""
        assert event.target_type == "user" and set(event.changes) == {"deleted_at"}


@pytest.mark.django_db
def test_a_refused_change_writes_no_row(api_a, staff_token, member_a, tenant_a) -> None:
    response = api_a.call(
        "patch",
        f"{USERS}/{member_a.pk}",
        {"email": "staff@alpha.test"},  # taken
        token=staff_token,
        HTTP_X_REQUEST_ID="audit-refused-1",
    )
    assert error(response, 409)["code"] == "CONFLICT"
    with tenant_context(tenant_a.tenant):
        assert not AuditEvent.objects.filter(request_id="audit-refused-1").exists()


# ------------------------------------------------------------------ the last owner


@pytest.fixture
def peer_token(api_a, tenant_a) -> str:
    """A user holding every permission everywhere through a role of the tenant's own, not
    the owner role: they outrank the owner, so only the last-owner rule stops them."""
    from apps.rbac.catalogue import ALL_CODENAMES

    with tenant_context(tenant_a.tenant):
        peer = make_user(email="peer@alpha.test", username="peer")
        grant_role(peer, sorted(ALL_CODENAMES), name="everything")
    return str(api_a.login("peer@alpha.test")["access_token"])


@pytest.mark.django_db
def test_the_last_owner_cannot_be_deleted(api_a, peer_token, tenant_a) -> None:
    owner = tenant_a.admin()
    response = api_a.call(
        "delete", f"{USERS}/{owner.pk}", token=peer_token, HTTP_X_REQUEST_ID="audit-owner-1"
    )
    assert error(response, 409)["code"] == "CONFLICT"
    with tenant_context(tenant_a.tenant):
        assert not User.objects.get(pk=owner.pk).is_deleted
        assert not AuditEvent.objects.filter(request_id="audit-owner-1").exists()


@pytest.mark.django_db
def test_the_last_owner_cannot_be_deactivated(api_a, peer_token, tenant_a) -> None:
    owner = tenant_a.admin()
    response = api_a.call(
        "patch",
        f"{USERS}/{owner.pk}",
        {"is_active": False},
        token=peer_token,
        HTTP_X_REQUEST_ID="audit-owner-2",
    )
    assert error(response, 409)["code"] == "CONFLICT"
    with tenant_context(tenant_a.tenant):
        assert User.objects.get(pk=owner.pk).is_active
        assert not AuditEvent.objects.filter(request_id="audit-owner-2").exists()


@pytest.mark.django_db
def test_an_owner_who_is_not_the_last_can_be_deactivated_by_an_owner(
    api_a, owner_token, peer_token, member_a, tenant_a
) -> None:
    owner = tenant_a.admin()
    with tenant_context(tenant_a.tenant):
        RoleAssignment.objects.create(user=member_a, role=Role.objects.get(system_key="owner"))
    response = api_a.call(
        "patch", f"{USERS}/{member_a.pk}", {"is_active": False}, token=owner_token
    )
    assert response.status_code == 200, response.content
    assert (
        error(api_a.call("delete", f"{USERS}/{owner.pk}", token=peer_token), 409)["code"]
        == "CONFLICT"
    )  # now the tenant's first admin is the last active owner


# ------------------------------------------------------------------ passwords and sessions


@pytest.mark.django_db
def test_a_password_change_is_recorded_without_any_password_material(
    api_a, member_a, tenant_a, client_ip
) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    response = api_a.call(
        "post",
        "/api/v1/auth/password/change",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        token=token,
        HTTP_X_REQUEST_ID="audit-pw-1",
    )
    assert response.status_code == 200, response.content

    event = only_row(tenant_a, "audit-pw-1")
    assert (event.action, event.target_id) == ("user.password_changed", str(member_a.pk))
    assert event.changes == {}
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-pw-1")
    with tenant_context(tenant_a.tenant):
        stored_hash = User.objects.get(pk=member_a.pk).password
        logged = json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    for secret in (PASSWORD, NEW_PASSWORD, stored_hash, stored_hash.split("$")[-1]):
        assert secret not in logged
    assert "password" not in logged  # not even the field's name, let alone a value


@pytest.mark.django_db
def test_a_password_reset_is_recorded_with_the_user_as_actor(
    api_a, member_a, tenant_a, client_ip
) -> None:
    with tenant_context(tenant_a.tenant):
        PasswordResetToken.objects.create(
            user=member_a,
            token_hash=hashlib.sha256(b"reset-token-123").hexdigest(),
            request_event_id=uuid.uuid4(),
            expires_at=timezone.now() + timedelta(minutes=30),
        )
    response = api_a.call(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"token": "reset-token-123", "new_password": NEW_PASSWORD},
        HTTP_X_REQUEST_ID="audit-reset-1",
    )
    assert response.status_code == 200, response.content

    event = only_row(tenant_a, "audit-reset-1")
    assert (event.action, event.target_id, event.changes) == (
        "user.password_reset",
        str(member_a.pk),
        {},
    )
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-reset-1")
    with tenant_context(tenant_a.tenant):
        logged = json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert NEW_PASSWORD not in logged and "reset-token-123" not in logged


@pytest.mark.django_db
def test_logout_all_records_how_many_sessions_ended(api_a, member_a, tenant_a, client_ip) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    api_a.login("member@alpha.test")
    response = api_a.call(
        "post", "/api/v1/auth/logout-all", token=token, HTTP_X_REQUEST_ID="audit-all-1"
    )
    assert response.status_code == 200 and response.json()["data"]["revoked_sessions"] == 2

    event = only_row(tenant_a, "audit-all-1")
    assert (event.action, event.target_type, event.target_id) == (
        "user.sessions_revoked",
        "user",
        str(member_a.pk),
    )
    assert event.changes == {"count": 2}
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-all-1")


@pytest.mark.django_db
def test_revoking_one_session_is_recorded(api_a, member_a, tenant_a, client_ip) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    api_a.login("member@alpha.test")
    with tenant_context(tenant_a.tenant):
        other = Session.objects.filter(user=member_a).order_by("-created_at").first()
    assert other is not None
    response = api_a.call(
        "delete",
        f"/api/v1/auth/sessions/{other.pk}",
        token=token,
        HTTP_X_REQUEST_ID="audit-one-1",
    )
    assert response.status_code == 204, response.content

    event = only_row(tenant_a, "audit-one-1")
    assert (event.action, event.target_type, event.target_id) == (
        "session.revoked",
        "session",
        str(other.pk),
    )
    assert event.changes == {"user_id": member_a.pk, "reason": "revoked_by_user"}
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-one-1")


@pytest.mark.django_db
def test_logging_out_records_the_session_with_its_owner_as_actor(
    api_a, member_a, tenant_a, client_ip
) -> None:
    pair = api_a.login("member@alpha.test")
    response = api_a.call(
        "post",
        "/api/v1/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        HTTP_X_REQUEST_ID="audit-logout-1",
    )
    assert response.status_code == 200, response.content
    event = only_row(tenant_a, "audit-logout-1")
    assert (event.action, event.target_type) == ("session.revoked", "session")
    assert event.changes == {"user_id": member_a.pk, "reason": "logout"}
    assert_from_request(event, actor=member_a, ip=client_ip, request_id="audit-logout-1")


# ------------------------------------------------------------------ provisioning


@pytest.mark.django_db
def test_an_operator_provisioning_a_tenant_is_named_but_not_linked(operator_api, operator):
    """The operator is a user of the public schema: their id means nothing in the tenant's."""
    response = operator_api.post(
        "/api/v1/tenants",
        {"name": "Initech", "slug": "initech", "admin_email": "boss@initech.test"},
        format="json",
        HTTP_HOST="localhost",
    )
    assert response.status_code == 201, response.content
    with tenant_context(Tenant.objects.get(slug="initech")):
        event = AuditEvent.objects.get(action="user.created")
        assert event.actor_id is None and event.actor_email == operator.email
        assert event.changes["email"] == "boss@initech.test"
