"""Sign-in reads the user in one query, checks the password, and only then writes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from apps.accounts.selectors import SignInCandidate, sign_in_candidate_get
from apps.accounts.services import sessions
from apps.accounts.services.sessions import ClientInfo, session_login
from apps.accounts.tokens import TokenPair, user_roles
from apps.keys.services import signer_get
from apps.sso.models import IdentityProvider
from apps.sso.selectors import password_refused_for
from tests.accounts.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

CLIENT = ClientInfo(ip_address="203.0.113.7", user_agent="pytest")


def _provider(slug: str, **fields: object) -> IdentityProvider:
    return IdentityProvider.objects.create(
        slug=slug, name=slug, issuer=f"https://{slug}.example.com", client_id="c", **fields
    )


def _candidate(email: str) -> SignInCandidate:
    found = sign_in_candidate_get(email=email)
    assert found is not None
    return found


def _same_as_the_rules(user: User) -> None:
    candidate = _candidate(user.email)
    assert candidate.user.pk == user.pk
    assert candidate.password_refused is password_refused_for(user)
    assert candidate.roles == user_roles(user)


def test_the_candidate_reads_what_the_sso_rule_and_the_roles_claim_read(tenant_a) -> None:
    from apps.organizations.models import Organization
    from apps.rbac.models import Role, RoleAssignment

    with tenant_context(tenant_a.tenant):
        user = make_user(email="candidate@alpha.test", username="candidate")
        other = make_user(email="other@alpha.test", username="other")
        _same_as_the_rules(user)  # no provider; the member role new users get

        admin = Role.objects.get(system_key="admin")
        custom = Role.objects.create(name="Auditors", permissions=["audit.view"])
        unit = Organization.objects.create(name="Unit", path="/")
        RoleAssignment.objects.create(user=user, role=admin)
        RoleAssignment.objects.create(user=user, role=custom)
        RoleAssignment.objects.create(user=user, role=custom, organization=unit)  # twice
        RoleAssignment.objects.create(user=other, role=custom)
        _same_as_the_rules(user)
        assert len(_candidate(user.email).roles) == len(set(user_roles(user)))

        _provider("optional")  # enabled, not required
        _provider("off", sso_required=True, enabled=False)
        _same_as_the_rules(user)
        assert _candidate(user.email).password_refused is False

        required = _provider("required", sso_required=True)
        _same_as_the_rules(user)
        assert _candidate(user.email).password_refused is True

        required.break_glass_users.add(other)  # someone else's way back in
        _same_as_the_rules(user)
        second = _provider("second", sso_required=True)
        second.break_glass_users.add(user)  # break-glass at one of two requiring providers
        _same_as_the_rules(user)
        assert _candidate(user.email).password_refused is False
        _same_as_the_rules(other)


def test_the_candidate_is_the_live_user_with_the_address(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        user = make_user(email="spelled@alpha.test", username="spelled")
        found = sign_in_candidate_get(email="  Spelled@ALPHA.test ")
        assert found is not None and found.user.pk == user.pk
        assert not found.user._state.adding  # a row, savable with update_fields
        assert sign_in_candidate_get(email="nobody@alpha.test") is None
        User.objects.filter(pk=user.pk).update(is_deleted=True, deleted_at=timezone.now())
        assert sign_in_candidate_get(email=user.email) is None
        again = make_user(email="spelled@alpha.test", username="spelled-again")
        assert _candidate(user.email).user.pk == again.pk


def test_operators_candidates_on_the_public_schema(operator) -> None:
    candidate = _candidate(operator.email)
    assert candidate.user.pk == operator.pk
    assert candidate.password_refused is False
    assert candidate.roles == user_roles(operator) == ["operator"]


def test_the_user_is_read_in_one_query_and_written_only_after_the_password(
    tenant_a, monkeypatch
) -> None:
    """One read before the hash, nothing written (and no row locked) until the password
    checked out; then the last sign-in and the session."""
    with tenant_context(tenant_a.tenant):
        user = make_user(email="order@alpha.test", username="order")
        _provider("optional")
        signer_get()  # the signing key, read (or made) once per process (apps/keys)
        original = sessions.check_password
        seen_at_the_hash: list[str] = []

        def watching(password, encoded, setter=None):
            seen_at_the_hash.extend(q["sql"] for q in queries.captured_queries)
            return original(password, encoded, setter=setter)

        monkeypatch.setattr(sessions, "check_password", watching)
        with CaptureQueriesContext(connection) as queries:
            pair = session_login(email="order@alpha.test", password=PASSWORD, client=CLIENT)
        before = [s for s in seen_at_the_hash if not s.startswith("SET search_path")]
        assert len(before) == 1 and before[0].startswith("SELECT"), before
        assert "FOR UPDATE" not in before[0]
        after = [q["sql"] for q in queries.captured_queries][len(seen_at_the_hash) :]
        writes = [s for s in after if s.startswith(("INSERT", "UPDATE"))]
        assert len(writes) == 2, after  # the last sign-in, the session
        session = Session.objects.get(user=user)
        assert isinstance(pair, TokenPair)
        assert session.refresh_jti == pair.refresh_jti and session.ip_address == CLIENT.ip_address
        assert User.objects.get(pk=user.pk).last_login is not None


@pytest.mark.parametrize("case", ["wrong password", "inactive", "sso required", "unknown"])
def test_a_refused_sign_in_writes_nothing(tenant_a, case) -> None:
    from apps.core.errors import ForbiddenError, UnauthorizedError

    with tenant_context(tenant_a.tenant):
        user = make_user(email="refused@alpha.test", username="refused")
        email, password = "refused@alpha.test", PASSWORD
        if case == "wrong password":
            password = PASSWORD + "-not"
        elif case == "inactive":
            User.objects.filter(pk=user.pk).update(is_active=False)
        elif case == "unknown":
            email = "nobody@alpha.test"
        else:
            _provider("required", sso_required=True)
        expected = ForbiddenError if case == "sso required" else UnauthorizedError
        with CaptureQueriesContext(connection) as queries, pytest.raises(expected):
            session_login(email=email, password=password, client=CLIENT)
        statements = [q["sql"] for q in queries.captured_queries]
        assert not [s for s in statements if not s.startswith(("SELECT", "SET search_path"))]
        assert not Session.objects.filter(user=user).exists()
        assert User.objects.get(pk=user.pk).last_login is None


def test_a_sign_in_that_cannot_write_stores_nothing_and_issues_nothing(
    tenant_a, monkeypatch
) -> None:
    def broken_save(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(Session, "save", broken_save)
    with tenant_context(tenant_a.tenant):
        user = make_user(email="nowrite@alpha.test", username="nowrite")
        with pytest.raises(RuntimeError, match="database gone"):
            session_login(email="nowrite@alpha.test", password=PASSWORD, client=CLIENT)
        assert not Session.objects.filter(user=user).exists()
        assert User.objects.get(pk=user.pk).last_login is None  # rolled back with it


def test_me_shows_the_new_last_login_after_a_sign_in(
    api_a, member_a, django_capture_on_commit_callbacks
) -> None:
    first = api_a.login("member@alpha.test")["access_token"]
    seen = api_a.call("get", "/api/v1/users/me", token=first).json()["data"]["last_login"]
    with django_capture_on_commit_callbacks(execute=True):  # as outside the test's transaction
        second = api_a.login("member@alpha.test")["access_token"]
    now_seen = api_a.call("get", "/api/v1/users/me", token=second).json()["data"]["last_login"]
    assert now_seen > seen  # the cached state was dropped after the sign-in's write
