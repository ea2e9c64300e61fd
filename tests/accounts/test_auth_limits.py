"""Brute-force limits, a refresh race on real PostgreSQL, and sign-in with Redis down."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Session, User
from devtools.services import free_port
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
    dead = f"redis://127.0.0.1:{free_port()}/0"
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
    pair = api_a.login("member@alpha.test")
    dead = f"redis://127.0.0.1:{free_port()}/0"
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
    assert _login(api_a, "member@alpha.test").status_code == 401
    # The gateway's script and sign-in's (both limits at once, the failure counted in
    # advance). (The cache drop runs on commit, which the test's transaction never reaches.)
    assert redis_commands == ["EVALSHA", "EVALSHA"]
    redis_commands.clear()
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200
    # And a success gives the failure counted in advance back.
    assert redis_commands == ["EVALSHA", "EVALSHA", "EVALSHA"]


@pytest.mark.django_db
def test_a_success_that_cannot_give_its_failure_back_still_signs_in(
    api_a, tenant_a, member_a, monkeypatch
) -> None:
    from django_redis import get_redis_connection
    from redis.client import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.accounts import limits
    from apps.core import ratelimit

    evalsha = Redis.evalsha
    calls: list[str] = []

    def lost_after_the_check(self, sha, numkeys, *args):
        # The sign-in's scripts (not the gateway's count): the check goes through, then
        # Redis is gone.
        if sha == ratelimit._script_sha:
            return evalsha(self, sha, numkeys, *args)
        calls.append(sha)
        if len(calls) > 1:
            raise RedisConnectionError("Connection closed by server.")
        return evalsha(self, sha, numkeys, *args)

    monkeypatch.setattr(Redis, "evalsha", lost_after_the_check)
    response = _login(api_a, "member@alpha.test", PASSWORD)
    assert response.status_code == 200
    assert len(calls) == 2
    # The failure counted in advance stays counted: stricter, never looser.
    with tenant_context(tenant_a.tenant):
        key = limits._limit("login_account", "member@alpha.test").key
    assert get_redis_connection("default").hget(key, "n") == b"1"


@pytest.mark.django_db
def test_sign_in_limits_can_be_switched_off(api_a, member_a, settings) -> None:
    settings.AUTH_RATE_LIMITS_ENABLED = False
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "login_ip": "1/m"}
    for _ in range(3):
        assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200


# ------------------------------------------------------------------ locks that last, windows that slide


def _at_offset(rate_clock, period: int, offset: float) -> float:
    """Hold the clock `offset` seconds into a period-long window counted from the epoch (where a
    fixed window of that period would start), and answer that instant."""
    start = (int(rate_clock.time()) // period + 1) * period
    rate_clock.set(start + offset)
    return start + offset


@pytest.mark.django_db
def test_the_account_lock_outlasts_a_fixed_window_edge(tenant_a, member_a, rate_clock) -> None:
    # The tester's run, with the shipped 5 failures per 5 minutes: 5 failures, then past the
    # edge where a fixed 5-minute window would start again, 5 more attempts.
    from rest_framework.test import APIClient

    from tests.accounts.conftest import Api

    def client(n: int) -> Api:
        return Api(APIClient(REMOTE_ADDR=f"10.8.0.{n}"), tenant_a.host)

    _at_offset(rate_clock, 300, 250)
    for n in range(5):
        assert _login(client(n), "member@alpha.test").status_code == 401
    locked = _login(client(10), "member@alpha.test", PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 300
    rate_clock.advance(52)  # 2 s past the edge
    for n in range(5):
        again = _login(client(20 + n), "member@alpha.test")
        assert again.status_code == 429
        assert int(again["Retry-After"]) == 248
    assert _login(client(30), "member@alpha.test", PASSWORD).status_code == 429
    rate_clock.advance(248)  # a full period after the last counted failure
    assert _login(client(31), "member@alpha.test", PASSWORD).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_the_lock_lasts_a_full_period_from_the_last_counted_failure(
    tenant_a, member_a, rate_clock
) -> None:
    from rest_framework.test import APIClient

    from tests.accounts.conftest import Api

    def client(n: int) -> Api:
        return Api(APIClient(REMOTE_ADDR=f"10.8.1.{n}"), tenant_a.host)

    _at_offset(rate_clock, 60, 10)  # login_account: 3/m
    assert _login(client(1), "member@alpha.test").status_code == 401
    rate_clock.advance(20)
    assert _login(client(2), "member@alpha.test").status_code == 401
    rate_clock.advance(20)
    assert _login(client(3), "member@alpha.test").status_code == 401  # the third: locked
    rate_clock.advance(50)  # 90 s after the first failure, 50 after the last
    locked = _login(client(4), "member@alpha.test", PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 10
    rate_clock.advance(10)
    assert _login(client(5), "member@alpha.test", PASSWORD).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_the_address_limit_does_not_start_again_at_a_window_edge(
    api_a, member_a, rate_clock
) -> None:
    _at_offset(rate_clock, 60, 59)  # login_ip: 4/m, one second before a minute's edge
    for n in range(4):
        assert _login(api_a, f"probe{n}@alpha.test").status_code == 401
    rate_clock.advance(2)
    blocked = _login(api_a, "member@alpha.test", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) == 58
    rate_clock.advance(58)  # a minute after the four attempts
    assert _login(api_a, "member@alpha.test", PASSWORD).status_code == 200


@pytest.mark.django_db
def test_other_auth_limits_hold_for_any_span_of_their_period(api_a, rate_clock, settings) -> None:
    # Password reset per address: 2 per hour, at whatever second a fixed window would end.
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "reset_ip": "2/h"}
    from django.test import RequestFactory

    from apps.accounts import limits
    from apps.core.errors import RateLimitedError

    request = RequestFactory().post("/", REMOTE_ADDR="10.8.2.1")
    start = _at_offset(rate_clock, 3600, 0)
    for _ in range(2):
        limits.count_and_check(request, "reset_ip", "10.8.2.1")
    for second in range(1, 3600):
        rate_clock.set(start + second)
        with pytest.raises(RateLimitedError) as refused:
            limits.count_and_check(request, "reset_ip", "10.8.2.1")
        assert refused.value.retry_after == 3600 - second
    rate_clock.set(start + 3600)
    limits.count_and_check(request, "reset_ip", "10.8.2.1")


def test_parallel_guesses_cannot_outrun_the_account_lock(settings) -> None:
    # Twenty attempts on one account at the same instant, each from its own address: only
    # as many as the account allows get to have their password checked.
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "login_account": "3/m"}
    from django.test import RequestFactory

    from apps.accounts import limits
    from apps.core.errors import RateLimitedError

    passed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def attempt(n: int) -> None:
        request = RequestFactory().post("/", REMOTE_ADDR=f"10.8.3.{n + 1}")
        start.wait()
        try:
            limits.login_check(request, "target@alpha.test")
        except RateLimitedError:
            return
        finally:
            connections.close_all()
        with lock:
            passed.append(n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == 3
