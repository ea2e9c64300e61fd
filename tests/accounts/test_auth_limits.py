"""Brute-force limits, a refresh race on real PostgreSQL, and sign-in with Redis down."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from tests.accounts.factories import PASSWORD, make_user

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def small_limits(settings) -> None:
    settings.AUTH_RATE_LIMITS = {
        **settings.AUTH_RATE_LIMITS,
        "login_ip": "4/m",
        "login_account": "3/m",
        "reset_ip": "2/m",
        "reset_account": "10/m",
    }


def _login(api_a, email: str, password: str = "wrong-password-1", **extra):
    return api_a.call("post", LOGIN, {"email": email, "password": password}, **extra)


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_login_is_limited_per_address_and_forged_forwarded_for_buys_nothing(
    api_a, member_a
) -> None:
    emails = [f"probe{n}@alpha.test" for n in range(4)]
    for n, email in enumerate(emails):
        assert _login(api_a, email, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code == 401
    blocked = _login(api_a, "probe9@alpha.test", HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(blocked["Retry-After"]) <= 60
    # Even the right password is refused while the address is blocked.
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_failures_lock_the_account_temporarily_from_any_address(tenant_a, member_a) -> None:
    from rest_framework.test import APIClient

    from tests.accounts.conftest import Api

    for n in range(3):
        client = Api(APIClient(REMOTE_ADDR=f"10.9.0.{n + 1}"), tenant_a.host)
        assert _login(client, "member@alpha.test").status_code == 401
    elsewhere = Api(APIClient(REMOTE_ADDR="10.9.1.1"), tenant_a.host)
    locked = _login(elsewhere, "member@alpha.test", PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) >= 1
    # Other accounts are not affected.
    with tenant_context(tenant_a.tenant):
        make_user(email="other@alpha.test")
    assert _login(elsewhere, "other@alpha.test", PASSWORD).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_successful_sign_ins_do_not_lock_an_account(api_a, member_a) -> None:
    for _ in range(3):
        response = _login(api_a, "member@alpha.test", PASSWORD)
        assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_password_reset_is_limited(api_a) -> None:
    for _ in range(2):
        assert (
            api_a.call("post", "/api/v1/auth/password/reset", {"email": "x@alpha.test"}).status_code
            == 200
        )
    assert (
        api_a.call("post", "/api/v1/auth/password/reset", {"email": "y@alpha.test"}).status_code
        == 429
    )


@pytest.mark.django_db
def test_sign_in_with_redis_down_is_a_clean_503(api_a, member_a, settings) -> None:
    from platform_site.devservices import _free_port

    dead = f"redis://127.0.0.1:{_free_port()}/0"
    settings.CACHES = {
        name: {**config, "LOCATION": dead} for name, config in settings.CACHES.items()
    }
    response = _login(api_a, "member@alpha.test", PASSWORD)
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Traceback" not in response.content.decode()
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_bearer_requests_still_authenticate_with_redis_down(api_a, member_a, settings) -> None:
    from platform_site.devservices import _free_port

    pair = api_a.login("member@alpha.test")
    dead = f"redis://127.0.0.1:{_free_port()}/0"
    settings.CACHES = {
        name: {**config, "LOCATION": dead} for name, config in settings.CACHES.items()
    }
    assert api_a.call("get", "/api/v1/users/me", token=pair["access_token"]).status_code == 200


def test_twenty_concurrent_refreshes_yield_one_live_successor(
    session_tenants, django_db_blocker
) -> None:
    """Real concurrency: 20 threads, 20 database connections, one refresh token."""
    tenant = session_tenants["a"]
    email = f"racer-{uuid.uuid4().hex[:8]}@alpha.test"
    with django_db_blocker.unblock():
        with tenant_context(tenant.tenant):
            user = make_user(email=email)
        client = Client()
        login = client.post(
            LOGIN,
            {"email": email, "password": PASSWORD},
            content_type="application/json",
            HTTP_HOST=tenant.host,
        )
        assert login.status_code == 200, login.content
        refresh_token = login.json()["data"]["refresh_token"]

        results: list[tuple[int, dict]] = []
        lock = threading.Lock()
        start = threading.Barrier(20)

        def refresh() -> None:
            try:
                start.wait()
                response = Client().post(
                    "/api/v1/auth/refresh",
                    {"refresh_token": refresh_token},
                    content_type="application/json",
                    HTTP_HOST=tenant.host,
                    REMOTE_ADDR=f"10.20.{uuid.uuid4().int % 250}.1",
                )
                with lock:
                    results.append((response.status_code, response.json()))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=refresh) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            statuses = sorted(status for status, _ in results)
            assert statuses == [200] + [401] * 19, statuses
            winner = next(body for status, body in results if status == 200)["data"]
            # The losers were a race, not theft: the session lives and its successor works.
            me = Client().get(
                "/api/v1/users/me",
                HTTP_HOST=tenant.host,
                HTTP_AUTHORIZATION=f"Bearer {winner['access_token']}",
            )
            assert me.status_code == 200
            with tenant_context(tenant.tenant):
                sessions = list(Session.objects.filter(user=user))
            assert len(sessions) == 1 and sessions[0].revoked_at is None
        finally:
            with tenant_context(tenant.tenant):
                User.objects.filter(pk=user.pk).delete()


# ------------------------------------------------------------------ sign-in's one round trip


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_every_sign_in_attempt_counts_against_the_address_even_successful_ones(
    api_a, member_a
) -> None:
    for _ in range(4):  # login_ip: 4/m
        assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200
    blocked = _login(api_a, "member@alpha.test", PASSWORD)
    assert blocked.status_code == 429
    assert 1 <= int(blocked["Retry-After"]) <= 60


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_account_lock_counts_failures_only_and_answers_retry_after(tenant_a, member_a) -> None:
    from rest_framework.test import APIClient

    from tests.accounts.conftest import Api

    def client(n: int) -> Api:
        return Api(APIClient(REMOTE_ADDR=f"10.7.0.{n}"), tenant_a.host)

    assert _login(client(1), "member@alpha.test", PASSWORD).status_code == 200
    assert _login(client(2), "member@alpha.test").status_code == 401
    assert _login(client(3), "member@alpha.test", PASSWORD).status_code == 200
    assert _login(client(4), "member@alpha.test").status_code == 401
    # Two failures of three allowed (3/m): the account still signs in.
    assert _login(client(5), "member@alpha.test", PASSWORD).status_code == 200
    assert _login(client(6), "member@alpha.test").status_code == 401
    locked = _login(client(7), "member@alpha.test", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(locked["Retry-After"]) <= 60
    # The account's name is compared after normalisation: case does not dodge the lock.
    assert _login(client(8), "MEMBER@alpha.test", PASSWORD).status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_sign_in_limits_are_per_tenant(api_a, api_b, tenant_b, member_a) -> None:
    with tenant_context(tenant_b.tenant):
        make_user(email="member@beta.test")
    for _ in range(3):
        assert _login(api_a, "member@alpha.test").status_code == 401
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 429
    # Same address, same limits, another tenant: its own counters.
    assert _login(api_b, "member@beta.test", PASSWORD).status_code == 200


@pytest.mark.django_db
def test_sign_in_costs_one_redis_round_trip_for_its_limits(api_a, member_a, redis_commands) -> None:
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200  # warm: the tenant
    redis_commands.clear()
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200
    # The gateway's script and sign-in's (both limits at once). (The cache drop runs on
    # commit, which the test's transaction never reaches.)
    assert redis_commands == ["EVALSHA", "EVALSHA"]
    redis_commands.clear()
    assert _login(api_a, "member@alpha.test").status_code == 401
    # And the failure, counted against the account.
    assert redis_commands.count("EVALSHA") == 3


@pytest.mark.django_db
def test_a_failure_not_counted_is_a_503_not_a_401(api_a, member_a) -> None:
    from unittest import mock

    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.accounts import limits

    with mock.patch.object(
        limits.ratelimit,
        "count_and_read",
        side_effect=[(1, [None]), RedisConnectionError("down")],
    ):
        response = _login(api_a, "member@alpha.test")
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_sign_in_limits_can_be_switched_off(api_a, member_a, settings) -> None:
    settings.RATELIMIT_ENABLE = False
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "login_ip": "1/m"}
    for _ in range(3):
        assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200
