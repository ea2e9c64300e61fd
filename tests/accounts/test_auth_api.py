"""Sign-in, tokens that can really be revoked, sessions, passwords."""

from __future__ import annotations

import re
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.jobs.models import OutboxEvent
from tests.accounts.factories import PASSWORD, make_user

ME = "/api/v1/users/me"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def error_code(response) -> str:
    return response.json()["error"]["code"]


# ------------------------------------------------------------------ login


@pytest.mark.django_db
def test_login_returns_a_token_pair_with_the_promised_claims(api_a, member_a, tenant_a) -> None:
    from apps.rbac.services import member_grant

    with tenant_context(tenant_a.tenant):
        member_grant(user=member_a)  # what user_create gives every new user
    pair = api_a.login("member@alpha.test")
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 15 * 60
    access, refresh = claims_of(pair["access_token"]), claims_of(pair["refresh_token"])
    assert access["sub"] == str(member_a.pk) and isinstance(access["sub"], str)
    assert access["tenant"] == tenant_a.schema
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["email"] == "member@alpha.test"
    assert access["roles"] == ["member"]
    assert access["iss"] == "platform" and access["aud"] == "platform-api"
    assert access["sid"] == refresh["sid"]
    assert access["jti"] != refresh["jti"]
    assert access["exp"] - access["iat"] == 15 * 60
    with tenant_context(tenant_a.tenant):
        session = Session.objects.get(pk=access["sid"])
        assert session.refresh_jti == refresh["jti"]
        assert User.objects.get(pk=member_a.pk).last_login is not None


@pytest.mark.django_db
def test_access_token_works_and_missing_token_is_401_with_challenge(api_a, member_a) -> None:
    pair = api_a.login("member@alpha.test")
    me = api_a.call("get", ME, token=pair["access_token"])
    assert me.status_code == 200 and me.json()["data"]["email"] == "member@alpha.test"
    anonymous = api_a.call("get", ME)
    assert anonymous.status_code == 401 and error_code(anonymous) == "UNAUTHORIZED"
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["member@alpha.test", "nobody@alpha.test", "MEMBER@ALPHA.TEST "])
def test_wrong_password_and_unknown_email_look_the_same(api_a, member_a, email) -> None:
    response = api_a.call(
        "post", "/api/v1/auth/login", {"email": email.strip(), "password": "wrong-password-1"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid email or password"


@pytest.mark.django_db
def test_unknown_email_costs_one_password_hash_like_a_wrong_password(
    api_a, member_a, monkeypatch
) -> None:
    from django.contrib.auth.hashers import get_hasher

    hasher_class = type(get_hasher())
    calls: list[str] = []
    original = hasher_class.encode

    def counting_encode(self, password, salt, *args, **kwargs):
        calls.append(password)
        return original(self, password, salt, *args, **kwargs)

    monkeypatch.setattr(hasher_class, "encode", counting_encode)
    for email in ("member@alpha.test", "nobody@alpha.test"):
        calls.clear()
        api_a.call("post", "/api/v1/auth/login", {"email": email, "password": "wrong-password-1"})
        assert len(calls) == 1, email


@pytest.mark.django_db
def test_inactive_and_deleted_users_cannot_sign_in(api_a, tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        make_user(email="off@alpha.test", is_active=False)
        make_user(email="gone@alpha.test", is_deleted=True, deleted_at=timezone.now())
    for email in ("off@alpha.test", "gone@alpha.test"):
        response = api_a.call("post", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "Invalid email or password"


@pytest.mark.django_db
def test_operators_sign_in_on_the_public_host(api, operator) -> None:
    from tests.accounts.conftest import Api
    from tests.conftest import ADMIN_PASSWORD

    public = Api(api, "localhost")
    pair = public.login(operator.email, ADMIN_PASSWORD)
    assert claims_of(pair["access_token"])["tenant"] == "public"
    tenants = public.call("get", "/api/v1/tenants", token=pair["access_token"])
    assert tenants.status_code == 200


# ------------------------------------------------------------------ tokens are bound to their tenant


@pytest.mark.django_db
def test_token_of_tenant_a_is_refused_on_tenant_b_even_with_equal_user_ids(
    api_a, api_b, tenant_a, tenant_b
) -> None:
    from tests.conftest import ADMIN_PASSWORD

    pair = api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)
    assert tenant_a.admin().pk == tenant_b.admin().pk  # same id, different people
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200
    response = api_b.call("get", ME, token=pair["access_token"])
    assert response.status_code == 401
    assert "not issued for this tenant" in response.json()["error"]["message"]
    refresh = api_b.call("post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refresh.status_code == 401


@pytest.mark.django_db
def test_public_token_is_refused_on_a_tenant_host(api, api_a, operator) -> None:
    from tests.accounts.conftest import Api
    from tests.conftest import ADMIN_PASSWORD

    pair = Api(api, "localhost").login(operator.email, ADMIN_PASSWORD)
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 401


# ------------------------------------------------------------------ forged and wrong tokens


def _forge(claims: dict, *, key: Ed25519PrivateKey | None = None) -> str:
    """Signed with the platform's own signing key (so only the claims are wrong), or `key`."""
    from apps.keys.services import signer_get

    signer = signer_get()
    return jwt.encode(
        claims, key or signer.private_key, algorithm=signer.algorithm, headers={"kid": signer.kid}
    )


@pytest.mark.django_db
def test_forged_expired_and_wrong_type_tokens_are_401(api_a, member_a) -> None:
    pair = api_a.login("member@alpha.test")
    good = claims_of(pair["access_token"])
    now = int(timezone.now().timestamp())
    unsigned_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    import base64
    import json

    body = base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b"=").decode()
    cases = {
        "alg none": f"{unsigned_header}.{body}.",
        "another Ed25519 key under our kid": _forge(good, key=Ed25519PrivateKey.generate()),
        "HS256 with the server secret": jwt.encode(good, settings.SECRET_KEY, algorithm="HS256"),
        "wrong audience": _forge({**good, "aud": "someone-else"}),
        "wrong issuer": _forge({**good, "iss": "evil"}),
        "expired": _forge({**good, "iat": now - 3600, "exp": now - 1800}),
        "refresh as access": pair["refresh_token"],
        "no tenant claim": _forge({k: v for k, v in good.items() if k != "tenant"}),
        "garbage": "not-a-token",
        "empty": "",
    }
    assert api_a.call("get", ME, token=_forge(good)).status_code == 200  # the forger works
    for name, token in cases.items():
        response = api_a.call("get", ME, token=token)
        assert response.status_code == 401, name
        assert error_code(response) == "UNAUTHORIZED", name
    access_as_refresh = api_a.call(
        "post", "/api/v1/auth/refresh", {"refresh_token": pair["access_token"]}
    )
    assert access_as_refresh.status_code == 401


# ------------------------------------------------------------------ refresh families


@pytest.mark.django_db
def test_refresh_rotates_and_the_old_token_is_refused(api_a, member_a) -> None:
    first = api_a.login("member@alpha.test")
    second = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second_pair = second.json()["data"]
    assert second_pair["refresh_token"] != first["refresh_token"]
    assert (
        claims_of(second_pair["refresh_token"])["sid"] == claims_of(first["refresh_token"])["sid"]
    )
    # Within the grace period: refused, but the session lives on.
    again = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "already used" in again.json()["error"]["message"]
    assert api_a.call("get", ME, token=second_pair["access_token"]).status_code == 200
    third = api_a.call(
        "post", "/api/v1/auth/refresh", {"refresh_token": second_pair["refresh_token"]}
    )
    assert third.status_code == 200


@pytest.mark.django_db
def test_replaying_a_rotated_refresh_token_revokes_the_whole_family(
    api_a, member_a, tenant_a
) -> None:
    first = api_a.login("member@alpha.test")
    second = api_a.call(
        "post", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}
    ).json()["data"]
    sid = claims_of(first["refresh_token"])["sid"]
    with tenant_context(tenant_a.tenant):
        Session.objects.filter(pk=sid).update(rotated_at=timezone.now() - timedelta(minutes=5))

    replay = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and "reuse" in replay.json()["error"]["message"]
    # The thief's replay also ended the legitimate holder's tokens.
    assert (
        api_a.call(
            "post", "/api/v1/auth/refresh", {"refresh_token": second["refresh_token"]}
        ).status_code
        == 401
    )
    assert api_a.call("get", ME, token=second["access_token"]).status_code == 401
    with tenant_context(tenant_a.tenant):
        session = Session.objects.get(pk=sid)
        assert session.revoke_reason == "refresh_reused"
        event = OutboxEvent.objects.get(event_type="auth.refresh_token_reused")
        assert event.data == {"user_id": member_a.pk, "session_id": sid}
        assert event.metadata["security"] is True


@pytest.mark.django_db
def test_refresh_refused_for_deactivated_user(api_a, member_a, tenant_a) -> None:
    pair = api_a.login("member@alpha.test")
    with tenant_context(tenant_a.tenant):
        User.objects.filter(pk=member_a.pk).update(is_active=False)
    response = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401


# ------------------------------------------------------------------ revocation reaches access tokens


@pytest.mark.django_db
def test_logout_ends_that_session_only(api_a, member_a) -> None:
    laptop, phone = api_a.login("member@alpha.test"), api_a.login("member@alpha.test")
    response = api_a.call("post", "/api/v1/auth/logout", {"refresh_token": laptop["refresh_token"]})
    assert response.status_code == 200 and response.json()["data"] == {"revoked_sessions": 1}
    assert api_a.call("get", ME, token=laptop["access_token"]).status_code == 401
    assert (
        api_a.call(
            "post", "/api/v1/auth/refresh", {"refresh_token": laptop["refresh_token"]}
        ).status_code
        == 401
    )
    assert api_a.call("get", ME, token=phone["access_token"]).status_code == 200


@pytest.mark.django_db
def test_logout_all_kills_every_already_issued_access_token(api_a, member_a) -> None:
    laptop, phone = api_a.login("member@alpha.test"), api_a.login("member@alpha.test")
    assert api_a.call("get", ME, token=phone["access_token"]).status_code == 200  # cached as valid
    response = api_a.call("post", "/api/v1/auth/logout-all", token=laptop["access_token"])
    assert response.json()["data"] == {"revoked_sessions": 2}
    for pair in (laptop, phone):
        assert api_a.call("get", ME, token=pair["access_token"]).status_code == 401
        assert (
            api_a.call(
                "post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}
            ).status_code
            == 401
        )
    # Signing in again works at once, even within the same second.
    fresh = api_a.login("member@alpha.test")
    assert api_a.call("get", ME, token=fresh["access_token"]).status_code == 200


@pytest.mark.django_db
def test_password_change_ends_every_session_and_signs_this_device_in_again(
    api_a, member_a, tenant_a
) -> None:
    old = api_a.login("member@alpha.test")
    other = api_a.login("member@alpha.test")
    response = api_a.call(
        "post",
        "/api/v1/auth/password/change",
        {"old_password": PASSWORD, "new_password": "a-brand-new-passphrase-7"},
        token=old["access_token"],
    )
    assert response.status_code == 200, response.content
    new = response.json()["data"]
    for pair in (old, other):
        assert api_a.call("get", ME, token=pair["access_token"]).status_code == 401
    assert api_a.call("get", ME, token=new["access_token"]).status_code == 200
    assert (
        api_a.call(
            "post", "/api/v1/auth/login", {"email": "member@alpha.test", "password": PASSWORD}
        ).status_code
        == 401
    )
    api_a.login("member@alpha.test", "a-brand-new-passphrase-7")
    with tenant_context(tenant_a.tenant):
        event = OutboxEvent.objects.get(event_type="auth.password_changed")
        assert event.data == {"user_id": member_a.pk, "how": "change"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"old_password": "not-my-password", "new_password": "a-brand-new-passphrase-7"},
            "old_password",
        ),
        ({"old_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "password123"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "member@alpha.test"}, "new_password"),
    ],
)
def test_password_change_validates(api_a, member_a, payload, field) -> None:
    pair = api_a.login("member@alpha.test")
    response = api_a.call(
        "post", "/api/v1/auth/password/change", payload, token=pair["access_token"]
    )
    assert response.status_code == 422
    assert field in response.json()["error"]["details"]
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200  # nothing changed


@pytest.mark.django_db
def test_deactivated_and_deleted_users_get_401_never_500(
    api_a, member_a, staff_a, tenant_a
) -> None:
    staff = api_a.login("staff@alpha.test")
    member = api_a.login("member@alpha.test")
    deactivate = api_a.call(
        "patch", f"/api/v1/users/{member_a.pk}", {"is_active": False}, token=staff["access_token"]
    )
    assert deactivate.status_code == 200
    assert api_a.call("get", ME, token=member["access_token"]).status_code == 401

    api_a.call(
        "patch", f"/api/v1/users/{member_a.pk}", {"is_active": True}, token=staff["access_token"]
    )
    member = api_a.login("member@alpha.test")
    assert (
        api_a.call(
            "delete", f"/api/v1/users/{member_a.pk}", token=staff["access_token"]
        ).status_code
        == 204
    )
    response = api_a.call("get", ME, token=member["access_token"])
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"


@pytest.mark.django_db
def test_a_user_changed_behind_the_cache_is_seen_at_once(api_a, member_a, tenant_a) -> None:
    pair = api_a.login("member@alpha.test")
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200  # cached now
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(pk=member_a.pk)
        user.is_active = False
        user.save()  # e.g. from the admin
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 401


# ------------------------------------------------------------------ sessions


@pytest.mark.django_db
def test_sessions_list_and_revoke(api_a, member_a, staff_a) -> None:
    laptop = api_a.login("member@alpha.test", HTTP_USER_AGENT="Laptop/1.0")
    phone = api_a.login("member@alpha.test", HTTP_USER_AGENT="Phone/2.0")
    listed = api_a.call("get", "/api/v1/auth/sessions", token=laptop["access_token"]).json()["data"]
    assert len(listed) == 2
    by_agent = {s["user_agent"]: s for s in listed}
    assert by_agent["Laptop/1.0"]["current"] is True and by_agent["Phone/2.0"]["current"] is False
    assert {"id", "created_at", "last_used_at", "ip_address"} <= set(by_agent["Phone/2.0"])

    phone_sid = by_agent["Phone/2.0"]["id"]
    assert (
        api_a.call(
            "delete", f"/api/v1/auth/sessions/{phone_sid}", token=laptop["access_token"]
        ).status_code
        == 204
    )
    assert api_a.call("get", ME, token=phone["access_token"]).status_code == 401
    assert api_a.call("get", ME, token=laptop["access_token"]).status_code == 200
    assert (
        api_a.call(
            "delete", f"/api/v1/auth/sessions/{phone_sid}", token=laptop["access_token"]
        ).status_code
        == 404
    )

    # Someone else's session is not found, not revoked.
    staff = api_a.login("staff@alpha.test")
    laptop_sid = by_agent["Laptop/1.0"]["id"]
    assert (
        api_a.call(
            "delete", f"/api/v1/auth/sessions/{laptop_sid}", token=staff["access_token"]
        ).status_code
        == 404
    )
    assert api_a.call("get", ME, token=laptop["access_token"]).status_code == 200


# ------------------------------------------------------------------ password reset


def _link_token(message) -> str:
    match = re.search(r"token=([\w-]+)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_password_reset_mails_a_single_use_link(
    api_a, member_a, tenant_a, django_capture_on_commit_callbacks
) -> None:
    session = api_a.login("member@alpha.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.call("post", "/api/v1/auth/password/reset", {"email": "Member@Alpha.test"})
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["member@alpha.test"]
    assert f"https://{tenant_a.host}/reset-password?token=" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    assert message.alternatives and "Reset my password" in str(message.alternatives[0][0])
    token = _link_token(message)

    confirm = api_a.call(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"token": token, "new_password": "reset-by-mail-passphrase"},
    )
    assert confirm.status_code == 200, confirm.content
    api_a.login("member@alpha.test", "reset-by-mail-passphrase")
    assert api_a.call("get", ME, token=session["access_token"]).status_code == 401  # sessions ended

    again = api_a.call(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"token": token, "new_password": "yet-another-passphrase"},
    )
    assert again.status_code == 422 and "token" in again.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_password_reset_answers_the_same_for_unknown_addresses(
    api_a, member_a, django_capture_on_commit_callbacks
) -> None:
    answers = []
    for email in ("member@alpha.test", "nobody@alpha.test"):
        with django_capture_on_commit_callbacks(execute=True):
            response = api_a.call("post", "/api/v1/auth/password/reset", {"email": email})
        answers.append((response.status_code, response.json()["data"]))
    assert answers[0] == answers[1]
    assert [m.to for m in mail.outbox] == [["member@alpha.test"]]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_expired_reset_link_is_refused(
    api_a, member_a, tenant_a, django_capture_on_commit_callbacks
) -> None:
    from apps.accounts.models import PasswordResetToken

    with django_capture_on_commit_callbacks(execute=True):
        api_a.call("post", "/api/v1/auth/password/reset", {"email": "member@alpha.test"})
    token = _link_token(mail.outbox[0])
    with tenant_context(tenant_a.tenant):
        PasswordResetToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_a.call(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"token": token, "new_password": "reset-by-mail-passphrase"},
    )
    assert response.status_code == 422


@pytest.mark.django_db
def test_reset_send_is_idempotent_per_request(member_a, tenant_a) -> None:
    import uuid

    from apps.accounts.services.passwords import password_reset_send

    event_id = str(uuid.uuid4())
    with tenant_context(tenant_a.tenant):
        assert password_reset_send(request_event_id=event_id, email="member@alpha.test") is True
        assert password_reset_send(request_event_id=event_id, email="member@alpha.test") is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_operators_manage_their_own_password_and_sessions_on_the_public_host(api, operator) -> None:
    from tests.accounts.conftest import Api
    from tests.conftest import ADMIN_PASSWORD

    public = Api(api, "localhost")
    token = public.login(operator.email, ADMIN_PASSWORD)["access_token"]
    sessions = public.call("get", "/api/v1/auth/sessions", token=token)
    assert sessions.status_code == 200, sessions.json()
    changed = public.call(
        "post",
        "/api/v1/auth/password/change",
        {"old_password": ADMIN_PASSWORD, "new_password": "an-Operator-passw0rd!"},
        token=token,
    )
    assert changed.status_code == 200, changed.json()
    assert public.call("get", "/api/v1/auth/sessions", token=token).status_code == 401
    again = public.login(operator.email, "an-Operator-passw0rd!")["access_token"]
    assert public.call("post", "/api/v1/auth/logout-all", token=again).status_code == 200
    # Audited in the public schema, as a tenant user's change is in theirs.
    from apps.audit.models import AuditEvent

    actions = set(AuditEvent.objects.filter(actor=operator).values_list("action", flat=True))
    assert {"user.password_changed", "user.sessions_revoked"} <= actions, actions
    # Their events are dispatched, not left failing for the relay to retry forever.
    from apps.jobs.events import event_dispatch
    from apps.jobs.models import OutboxEvent

    events = list(OutboxEvent.objects.filter(dispatched_at__isnull=True))
    assert {e.event_type for e in events} >= {"auth.password_changed"}
    for event in events:  # what the commit would do (this test's transaction never commits)
        assert event_dispatch(event), OutboxEvent.objects.get(pk=event.pk).last_error


@pytest.mark.django_db
def test_a_public_schema_migrated_before_the_audit_table_gets_it() -> None:
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("apps.audit.migrations.0002_public_schema_table")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE audit_auditevent")  # as a database migrated before
        assert "audit_auditevent" not in connection.introspection.table_names(cursor)
    with connection.schema_editor(atomic=False) as editor:
        migration.table_ensure(apps, editor)
        migration.table_ensure(apps, editor)  # a second run changes nothing
    with connection.cursor() as cursor:
        assert "audit_auditevent" in connection.introspection.table_names(cursor)
        indexes = connection.introspection.get_constraints(cursor, "audit_auditevent")
    assert {"audit_target_idx", "audit_actor_idx", "audit_action_idx"} <= set(indexes)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_operators_reset_their_password_on_the_public_host(
    api, operator, django_capture_on_commit_callbacks
) -> None:
    from apps.jobs.models import OutboxEvent
    from tests.accounts.conftest import Api

    public = Api(api, "localhost")
    with django_capture_on_commit_callbacks(execute=True):
        response = public.call("post", "/api/v1/auth/password/reset", {"email": operator.email})
    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [[operator.email]]
    assert "https://localhost/reset-password?token=" in mail.outbox[0].body
    confirm = public.call(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"token": _link_token(mail.outbox[0]), "new_password": "operator-reset-passphrase"},
    )
    assert confirm.status_code == 200, confirm.content
    public.login(operator.email, "operator-reset-passphrase")
    # Every event of the flow went out; none is left for the relay to fail on again.
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True, attempts__gt=0).exists()
