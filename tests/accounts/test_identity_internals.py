"""Hash parameters, the one-round-trip gateway, cleanup, the admin, and bad input everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.hashers import PlatformArgon2PasswordHasher
from apps.accounts.models import PasswordResetToken, Session, User
from apps.accounts.services.sessions import auth_records_cleanup
from apps.accounts.services.users import users_purge
from tests.accounts.factories import PASSWORD, make_user

PRODUCTION_HASHERS = [
    "apps.accounts.hashers.PlatformArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


def test_argon2_parameters_meet_owasp_minimum(settings) -> None:
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    encoded = make_password("correct horse battery staple")
    assert encoded.startswith("argon2$argon2id$")
    assert "m=19456,t=2,p=1" in encoded
    assert check_password("correct horse battery staple", encoded)
    hasher = PlatformArgon2PasswordHasher()
    assert hasher.memory_cost >= 19 * 1024 and hasher.time_cost >= 2


@pytest.mark.django_db
def test_hashes_with_other_parameters_are_upgraded_at_sign_in(api_a, tenant_a, settings) -> None:
    from django.contrib.auth.hashers import Argon2PasswordHasher

    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    heavy = Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt())
    assert "m=102400" in heavy
    with tenant_context(tenant_a.tenant):
        user = make_user(email="legacy@alpha.test")
        User.objects.filter(pk=user.pk).update(password=heavy)
    api_a.login("legacy@alpha.test")
    with tenant_context(tenant_a.tenant):
        assert "m=19456,t=2,p=1" in User.objects.get(pk=user.pk).password


@pytest.mark.django_db
def test_an_authenticated_request_costs_one_redis_command_and_no_query(
    api_a, member_a, redis_commands
) -> None:
    pair = api_a.login("member@alpha.test")
    api_a.call("get", "/api/v1/info", token=pair["access_token"])  # warm: tenant, user, session
    commands = redis_commands
    commands.clear()
    with CaptureQueriesContext(connection) as queries:
        response = api_a.call("get", "/api/v1/info", token=pair["access_token"])
    assert response.status_code == 200
    assert commands == ["EVALSHA"]
    assert queries.captured_queries == []


@pytest.mark.django_db
def test_cleanup_removes_ended_sessions_and_spent_reset_tokens(member_a, tenant_a) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):

        def session(**fields) -> Session:
            defaults = {
                "user": member_a,
                "last_used_at": now,
                "expires_at": now + timedelta(days=1),
                "refresh_jti": "x",
            }
            return Session.objects.create(**{**defaults, **fields})

        live = session()
        recently_revoked = session(revoked_at=now - timedelta(days=1))
        old_revoked = session(revoked_at=now - timedelta(days=30))
        long_expired = session(expires_at=now - timedelta(days=30))
        PasswordResetToken.objects.create(
            user=member_a, token_hash="a" * 64, expires_at=now - timedelta(minutes=1)
        )
        PasswordResetToken.objects.create(
            user=member_a, token_hash="b" * 64, expires_at=now + timedelta(minutes=30)
        )
        result = auth_records_cleanup(now=now)
        remaining = set(Session.objects.values_list("pk", flat=True))
        assert remaining == {live.pk, recently_revoked.pk}
        assert old_revoked.pk not in remaining and long_expired.pk not in remaining
        assert result == {"sessions": 2, "password_reset_tokens": 1}
        assert list(PasswordResetToken.objects.values_list("token_hash", flat=True)) == ["b" * 64]


@pytest.mark.django_db
def test_purge_deletes_only_users_deleted_before_the_retention(tenant_a) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):
        old = make_user(
            email="old@alpha.test", is_deleted=True, deleted_at=now - timedelta(days=40)
        )
        recent = make_user(
            email="recent@alpha.test", is_deleted=True, deleted_at=now - timedelta(days=2)
        )
        live = make_user(email="live@alpha.test")
        assert users_purge(older_than_days=30, now=now) >= 1
        left = set(User.objects.values_list("pk", flat=True))
    assert old.pk not in left and {recent.pk, live.pk} <= left


# ------------------------------------------------------------------ the admin


def _tenant_admin_client(tenant_fixture) -> Client:
    client = Client()
    with tenant_context(tenant_fixture.tenant):
        client.force_login(tenant_fixture.admin())
    return client


@pytest.mark.django_db
def test_admin_revokes_sessions(api_a, member_a, tenant_a) -> None:
    pair = api_a.login("member@alpha.test")
    with tenant_context(tenant_a.tenant):
        session_id = Session.objects.get(user=member_a).pk
    client = _tenant_admin_client(tenant_a)
    response = client.post(
        "/admin/accounts/session/",
        {"action": "revoke", "_selected_action": [str(session_id)]},
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302
    assert api_a.call("get", "/api/v1/users/me", token=pair["access_token"]).status_code == 401


@pytest.mark.django_db
def test_admin_lists_soft_deleted_users_and_restores_them(member_a, tenant_a) -> None:
    client = _tenant_admin_client(tenant_a)
    with tenant_context(tenant_a.tenant):
        User.objects.filter(pk=member_a.pk).update(is_deleted=True, deleted_at=timezone.now())
    listing = client.get("/admin/accounts/user/?is_deleted__exact=1", HTTP_HOST=tenant_a.host)
    assert b"member@alpha.test" in listing.content
    assert b'value="delete_selected"' not in listing.content  # no hard delete here
    response = client.post(
        "/admin/accounts/user/",
        {"action": "restore", "_selected_action": [str(member_a.pk)]},
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not User.objects.get(pk=member_a.pk).is_deleted


# ------------------------------------------------------------------ bad input, everywhere in the envelope


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/api/v1/auth/login", {}, 422),
        ("/api/v1/auth/login", {"email": "not-an-email", "password": "x"}, 422),
        ("/api/v1/auth/login", {"email": "a@b.test", "password": "x", "remember": True}, 422),
        ("/api/v1/auth/refresh", {"refresh_token": "garbage"}, 401),
        ("/api/v1/auth/refresh", {}, 422),
        ("/api/v1/auth/logout", {"refresh_token": "garbage"}, 401),
        ("/api/v1/auth/password/reset", {"email": "nope"}, 422),
        (
            "/api/v1/auth/password/reset/confirm",
            {"token": "made-up", "new_password": "a-long-passphrase-9"},
            422,
        ),
        ("/api/v1/auth/logout-all", {}, 401),
        ("/api/v1/auth/password/change", {"old_password": "a", "new_password": "b"}, 401),
    ],
)
def test_auth_endpoints_answer_bad_input_in_the_envelope(api_a, path, payload, status) -> None:
    response = api_a.call("post", path, payload)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and body["error"]["code"] in {
        "VALIDATION_ERROR",
        "UNAUTHORIZED",
    }


@pytest.mark.django_db
def test_missing_user_and_session_are_404(api_a, staff_a) -> None:
    token = api_a.login("staff@alpha.test")["access_token"]
    assert api_a.call("get", "/api/v1/users/987654", token=token).status_code == 404
    assert api_a.call("post", "/api/v1/users/987654/restore", token=token).status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert api_a.call("delete", f"/api/v1/auth/sessions/{missing}", token=token).status_code == 404


@pytest.mark.django_db
def test_me_is_served_from_the_auth_cache_and_is_never_stale(api_a, member_a, tenant_a) -> None:
    pair = api_a.login("member@alpha.test")
    token = pair["access_token"]
    first = api_a.call("get", "/api/v1/users/me", token=token)  # fills the cache
    with CaptureQueriesContext(connection) as queries:
        cached = api_a.call("get", "/api/v1/users/me", token=token)
    assert queries.captured_queries == []
    assert cached.json()["data"] == first.json()["data"]
    with tenant_context(tenant_a.tenant):
        fresh = User.objects.get(pk=member_a.pk)
        assert cached.json()["data"]["last_login"] is not None
        assert cached.json()["data"]["created_at"].startswith(str(fresh.created_at.date()))
        # A change made anywhere (here: the ORM, as the admin or a shell would) shows at once.
        fresh.full_name = "Renamed Elsewhere"
        fresh.save()
    assert api_a.call("get", "/api/v1/users/me", token=token).json()["data"]["full_name"] == (
        "Renamed Elsewhere"
    )


@pytest.mark.django_db
def test_password_change_works_for_a_user_served_from_the_cache(api_a, member_a) -> None:
    pair = api_a.login("member@alpha.test")
    for _ in range(2):  # the second request authenticates from the cached state
        api_a.call("get", "/api/v1/users/me", token=pair["access_token"])
    response = api_a.call(
        "post",
        "/api/v1/auth/password/change",
        {"old_password": PASSWORD, "new_password": "a-brand-new-passphrase-7"},
        token=pair["access_token"],
    )
    assert response.status_code == 200, response.content
    api_a.login("member@alpha.test", "a-brand-new-passphrase-7")


@pytest.mark.django_db
def test_a_user_rebuilt_from_the_cache_cannot_be_saved_whole(member_a, tenant_a) -> None:
    from apps.accounts.authentication import _user_blob, _user_from_blob

    with tenant_context(tenant_a.tenant):
        cached = _user_from_blob(_user_blob(User.objects.get(pk=member_a.pk)))
        assert cached is not None and cached.from_auth_cache
        with pytest.raises(ValueError, match="authentication cache"):
            cached.save()
        cached.full_name = "Only This"
        cached.save(update_fields=["full_name"])
        stored = User.objects.get(pk=member_a.pk)
        assert stored.full_name == "Only This"
        assert stored.check_password(PASSWORD)


@pytest.mark.django_db
def test_a_password_set_in_the_admin_ends_every_session(api_a, member_a, tenant_a) -> None:
    pair = api_a.login("member@alpha.test")
    assert api_a.call("get", "/api/v1/users/me", token=pair["access_token"]).status_code == 200
    client = _tenant_admin_client(tenant_a)
    response = client.post(
        f"/admin/accounts/user/{member_a.pk}/password/",
        {
            "password1": "an-admin-chosen-passphrase-1",
            "password2": "an-admin-chosen-passphrase-1",
            "usable_password": "true",
        },
        HTTP_HOST=tenant_a.host,
    )
    assert response.status_code == 302, response.content[:3000]
    assert api_a.call("get", "/api/v1/users/me", token=pair["access_token"]).status_code == 401
    assert (
        api_a.call(
            "post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}
        ).status_code
        == 401
    )
    api_a.login("member@alpha.test", "an-admin-chosen-passphrase-1")


@pytest.mark.django_db
def test_address_and_name_lookups_use_the_live_unique_indexes(api_a, tenant_a) -> None:
    # Sign-in, password reset, SSO linking and the sign-up checks find users by address or
    # name: a plain `email =` could not use the lower(email) index and read every user.
    # Checked by what the index covers and what the query asks (a plan on a table of a
    # few rows may prefer any index).
    with tenant_context(tenant_a.tenant):
        user = make_user(email="indexed@alpha.test", username="Indexed")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = 'accounts_user'"
            )
            indexes = dict(cursor.fetchall())
        for queryset, column, index in (
            (User.objects.with_email(" INDEXED@alpha.test"), "email", "live_email_uniq"),
            (User.objects.with_username("iNDEXED"), "username", "live_username_uniq"),
        ):
            assert [u.pk for u in queryset] == [user.pk]
            definition = indexes[f"accounts_user_{index}"]
            assert (
                f"lower(({column})::text)" in definition and "WHERE (NOT is_deleted)" in definition
            )
            sql = str(queryset.query)
            assert (
                f'LOWER("accounts_user"."{column}") =' in sql
                and 'NOT "accounts_user"."is_deleted"' in sql
            )
        assert User.objects.with_email("indexed@alpha.test").filter(is_deleted=True).count() == 0
        api_a.login("indexed@alpha.test")  # signs in through it
