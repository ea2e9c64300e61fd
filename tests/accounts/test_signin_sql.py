"""Sign-in's two written-out statements (apps/accounts/sql.py) against the ORM they replace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.accounts.services.sessions import ClientInfo, login
from apps.accounts.sql import signin_candidate, signin_record
from apps.accounts.tokens import user_roles
from apps.keys import keyring
from apps.sso.models import IdentityProvider
from apps.sso.selectors import password_refused_for
from tests.accounts.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

CLIENT = ClientInfo(ip_address="203.0.113.7", user_agent="pytest")


def _provider(slug: str, **fields: object) -> IdentityProvider:
    return IdentityProvider.objects.create(
        slug=slug, name=slug, issuer=f"https://{slug}.example.com", client_id="c", **fields
    )


def _same_as_the_orm(user: User) -> None:
    candidate = signin_candidate(user.email)
    assert candidate is not None
    orm = User.objects.get(pk=user.pk)
    for field in User._meta.concrete_fields:
        if field.name != "search_vector":
            assert getattr(candidate.user, field.attname) == getattr(orm, field.attname), field
    assert candidate.password_refused is password_refused_for(orm)
    assert candidate.roles == user_roles(orm)


def test_the_candidate_reads_what_the_sso_rule_and_the_roles_claim_read(tenant_a) -> None:
    from apps.organizations.models import Organization
    from apps.rbac.models import Role, RoleAssignment

    with tenant_context(tenant_a.tenant):
        user = make_user(email="candidate@alpha.test", username="candidate")
        other = make_user(email="other@alpha.test", username="other")
        _same_as_the_orm(user)  # no provider; the member role new users get

        admin = Role.objects.get(system_key="admin")
        custom = Role.objects.create(name="Auditors", permissions=["audit.view"])
        unit = Organization.objects.create(name="Unit", path="/")
        RoleAssignment.objects.create(user=user, role=admin)
        RoleAssignment.objects.create(user=user, role=custom)
        RoleAssignment.objects.create(user=user, role=custom, organization=unit)  # twice
        RoleAssignment.objects.create(user=other, role=custom)
        _same_as_the_orm(user)
        assert len(signin_candidate(user.email).roles) == len(set(user_roles(user)))  # type: ignore[union-attr]

        _provider("optional")  # enabled, not required
        _provider("off", sso_required=True, enabled=False)
        _same_as_the_orm(user)
        assert signin_candidate(user.email).password_refused is False  # type: ignore[union-attr]

        required = _provider("required", sso_required=True)
        _same_as_the_orm(user)
        assert signin_candidate(user.email).password_refused is True  # type: ignore[union-attr]

        required.break_glass_users.add(other)  # someone else's way back in
        _same_as_the_orm(user)
        second = _provider("second", sso_required=True)
        second.break_glass_users.add(user)  # break-glass at one of two requiring providers
        _same_as_the_orm(user)
        assert signin_candidate(user.email).password_refused is False  # type: ignore[union-attr]
        _same_as_the_orm(other)


def test_the_candidate_is_the_live_user_with_the_address(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user(email="spelled@alpha.test", username="spelled")
        found = signin_candidate("  Spelled@ALPHA.test ")
        assert found is not None and found.user.pk == user.pk
        assert not found.user._state.adding  # a row, savable with update_fields
        assert signin_candidate("nobody@alpha.test") is None
        User.objects.filter(pk=user.pk).update(is_deleted=True, deleted_at=timezone.now())
        assert signin_candidate(user.email) is None
        again = make_user(email="spelled@alpha.test", username="spelled-again")
        assert signin_candidate(user.email).user.pk == again.pk  # type: ignore[union-attr]


def test_operators_candidates_on_the_public_schema(operator) -> None:
    candidate = signin_candidate(operator.email)
    assert candidate is not None and candidate.user.pk == operator.pk
    assert candidate.password_refused is False
    assert candidate.roles == user_roles(operator) == ["operator"]


def test_the_record_writes_the_session_the_orm_would_and_the_last_login(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user(email="record@alpha.test", username="record")
        now = timezone.now()
        session = Session(
            user=user,
            last_used_at=now,
            expires_at=now + timedelta(days=30),
            ip_address="2001:db8::1",
            user_agent="Agent/1.0 — ünïcode",
            refresh_jti="jti-1",
        )
        user.last_login = now
        signin_record(session=session, user=user)
        stored = Session.objects.get(pk=session.pk)
        for field in Session._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(session, field.attname), field
        assert stored.created_at is not None and stored.revoked_at is None
        assert User.objects.get(pk=user.pk).last_login == now


def test_a_sign_in_reads_once_and_writes_once(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user(email="twice@alpha.test", username="twice")
        _provider("optional")
        keyring.signer_get()  # the signing key, read once per process (apps/keys)
        before = timezone.now()
        with CaptureQueriesContext(connection) as queries:
            pair = login(email="twice@alpha.test", password=PASSWORD, client=CLIENT)
        # (SET search_path: the tenant backend's, after signer_get read the public schema;
        # savepoints: the sign-in's transaction, inside the test's.)
        statements = [
            q["sql"]
            for q in queries.captured_queries
            if not q["sql"].startswith(("SET search_path", "SAVEPOINT", "RELEASE SAVEPOINT"))
        ]
        assert len(statements) == 2, "\n".join(s[:150] for s in statements)
        read, write = statements
        assert read.startswith("SELECT") and 'lower(u."email") =' in read
        assert 'NOT u."is_deleted"' in read  # the live-address unique index's predicate
        assert write.startswith("WITH new_session AS (INSERT INTO")
        session = Session.objects.get(user=user)
        assert session.refresh_jti == pair.refresh_jti and session.ip_address == CLIENT.ip_address
        last_login = User.objects.get(pk=user.pk).last_login
        assert last_login is not None and last_login >= before


def test_me_shows_the_new_last_login_after_a_sign_in(
    api_a, member_a, django_capture_on_commit_callbacks
) -> None:
    first = api_a.login("member@alpha.test")["access_token"]
    seen = api_a.call("get", "/api/v1/users/me", token=first).json()["data"]["last_login"]
    with django_capture_on_commit_callbacks(execute=True):  # as outside the test's transaction
        second = api_a.login("member@alpha.test")["access_token"]
    now_seen = api_a.call("get", "/api/v1/users/me", token=second).json()["data"]["last_login"]
    assert now_seen > seen  # the cached state was dropped after the sign-in's write


@pytest.mark.parametrize("case", ["wrong password", "inactive", "sso required"])
def test_a_refused_sign_in_stores_nothing(tenant_a, case) -> None:
    """The session and the last sign-in are written while the hash runs, in a transaction
    committed only when the password checks out: a refusal leaves no trace."""
    from apps.core.errors import ForbiddenError, UnauthorizedError

    with tenant_context(tenant_a.tenant):
        user = make_user(email="refused@alpha.test", username="refused")
        password = PASSWORD
        if case == "wrong password":
            password = PASSWORD + "-not"
        elif case == "inactive":
            User.objects.filter(pk=user.pk).update(is_active=False)
        else:
            _provider("required", sso_required=True)
        expected = ForbiddenError if case == "sso required" else UnauthorizedError
        with pytest.raises(expected):
            login(email="refused@alpha.test", password=password, client=CLIENT)
        assert not Session.objects.filter(user=user).exists()
        assert User.objects.get(pk=user.pk).last_login is None


def test_a_sign_in_that_cannot_write_still_waits_for_its_hash(tenant_a, monkeypatch) -> None:
    """A failed write ends the sign-in with its error, but only once the hash is done (the
    hashing thread is free for the next one, and the answer takes the usual time)."""
    from apps.accounts import hashers
    from apps.accounts.services import sessions

    def broken_record(**kwargs: object) -> None:
        raise RuntimeError("database gone")

    futures = []
    original = hashers.verify_in_background

    def recording(password: str, encoded: str):
        future = original(password, encoded)
        futures.append(future)
        return future

    monkeypatch.setattr(sessions, "signin_record", broken_record)
    monkeypatch.setattr(sessions, "verify_in_background", recording)
    with tenant_context(tenant_a.tenant):
        user = make_user(email="nowrite@alpha.test", username="nowrite")
        with pytest.raises(RuntimeError, match="database gone"):
            login(email="nowrite@alpha.test", password=PASSWORD, client=CLIENT)
        assert futures and futures[0].done() and futures[0].result() == (True, False)
        assert not Session.objects.filter(user=user).exists()
