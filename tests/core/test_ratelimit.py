"""The gateway rate limit: per client, per tenant, atomic in Redis, with headers on every API response."""

from __future__ import annotations

import threading
import uuid

import pytest
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core import ratelimit
from apps.core.ratelimit import InvalidRate, Rate, parse_rate
from apps.core.tenancy import tenant_connection
from apps.tenants.services import tenant_update


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/m", Rate(600, 60)),
        ("100/10s", Rate(100, 10)),
        ("5000/hour", Rate(5000, 3600)),
        (" 7 / 2 minutes ", Rate(7, 120)),
        ("1/d", Rate(1, 86400)),
    ],
)
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text",
    [
        "", "lots", "10/fortnight", "0/m", "-1/m", "10/0s", "m/10",
        # Past any meaning, and past Redis's expiry range (every count would fail).
        "1/367d", "1/99999999999999999999d", "1000000001/s",
    ],
)  # fmt: skip
def test_parse_rate_rejects_nonsense(text: str) -> None:
    with pytest.raises(InvalidRate):
        parse_rate(text)


def get(client: APIClient, host: str, **extra):
    return client.get("/api/v1/info", HTTP_HOST=host, **extra)


@pytest.mark.django_db
def test_headers_count_down_then_429_with_retry_after(api: APIClient, tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = "3/m"
    remaining = []
    for _ in range(3):
        response = get(api, tenant_a.host)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert 1 <= int(response["X-RateLimit-Reset"]) <= 60
        remaining.append(int(response["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]

    blocked = get(api, tenant_a.host)
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["success"] is False and body["error"]["code"] == "RATE_LIMITED"
    retry_after = int(blocked["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["error"]["details"]["retry_after"] == retry_after
    assert blocked["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_error_responses_count_and_carry_headers(api: APIClient, tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = "2/m"
    first = api.get("/api/v1/does-not-exist", HTTP_HOST=tenant_a.host)
    assert first.status_code == 404 and first["X-RateLimit-Remaining"] == "1"
    api.get("/api/v1/does-not-exist", HTTP_HOST=tenant_a.host)
    assert api.get("/api/v1/does-not-exist", HTTP_HOST=tenant_a.host).status_code == 429


@pytest.mark.django_db
def test_forged_x_forwarded_for_buys_no_new_bucket(api: APIClient, tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = "2/m"
    for n in range(2):
        assert get(api, tenant_a.host, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 200
    assert get(api, tenant_a.host, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


@pytest.mark.django_db
def test_trusted_proxy_count_takes_the_address_the_proxy_saw(tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = "1/m"
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = APIClient(REMOTE_ADDR="10.0.0.1")  # every request arrives from the proxy
    a, b = f"198.51.100.{uuid.uuid4().int % 250}", "192.0.2.7"
    # The client may prepend anything; the proxy appends what it saw (the rightmost entry).
    assert get(proxy, tenant_a.host, HTTP_X_FORWARDED_FOR=f"1.1.1.1, {a}").status_code == 200
    assert get(proxy, tenant_a.host, HTTP_X_FORWARDED_FOR=f"2.2.2.2, {a}").status_code == 429
    assert get(proxy, tenant_a.host, HTTP_X_FORWARDED_FOR=b).status_code == 200


@pytest.mark.django_db
def test_authenticated_user_has_own_bucket(
    api: APIClient, tenant_a, settings, client_ip: str
) -> None:
    settings.API_RATE_LIMIT = "1/m"
    assert get(api, tenant_a.host).status_code == 200
    assert get(api, tenant_a.host).status_code == 429
    with tenant_context(tenant_a.tenant):
        user = User.objects.create_user(
            f"{uuid.uuid4().hex[:10]}@alpha.test", "a-long-enough-password"
        )
        api.force_login(user)
    # Same address, but now the request counts against the user.
    assert get(api, tenant_a.host).status_code == 200


@pytest.mark.django_db
def test_tenant_can_have_its_own_limit(api: APIClient, tenant_a, tenant_b, settings) -> None:
    settings.API_RATE_LIMIT = "100/m"
    tenant_update(tenant=tenant_a.tenant, tenant_settings={"rate_limit": "1/m"})
    try:
        assert get(api, tenant_a.host)["X-RateLimit-Limit"] == "1"
        assert get(api, tenant_a.host).status_code == 429
        # Same client, other tenant: its own bucket and the global limit.
        response = get(api, tenant_b.host)
        assert response.status_code == 200 and response["X-RateLimit-Limit"] == "100"
    finally:
        tenant_connection().set_schema_to_public()
        tenant_update(tenant=tenant_a.tenant, tenant_settings={})


@pytest.mark.django_db
def test_empty_rate_disables_the_limit(api: APIClient, tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = ""
    response = get(api, tenant_a.host)
    assert response.status_code == 200 and "X-RateLimit-Limit" not in response


@pytest.mark.django_db
def test_non_api_paths_are_not_counted(api: APIClient, tenant_a, settings) -> None:
    settings.API_RATE_LIMIT = "1/m"
    for _ in range(3):
        response = api.get("/health/live", HTTP_HOST=tenant_a.host)
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response


def test_concurrent_hits_are_counted_exactly(db) -> None:
    rate = Rate(limit=20, window=60)
    client = f"ip:race-{uuid.uuid4().hex}"
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(5):
            trip = ratelimit.hit(scope="race", client=client, rate=rate)
            assert trip is not None and trip.result is not None
            with lock:
                results.append(trip.result.allowed)

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 50
    assert results.count(True) == 20


def test_every_counter_key_gets_an_expiry(db) -> None:
    client = f"ip:ttl-{uuid.uuid4().hex}"
    ratelimit.hit(scope="ttl", client=client, rate=Rate(limit=5, window=30))
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"*:ttl:{client}:*"))
    assert len(keys) == 1
    assert 0 < redis.ttl(keys[0]) <= 31


@pytest.mark.django_db
def test_a_garbage_forwarded_address_falls_back_to_the_peer(tenant_a, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient(REMOTE_ADDR="10.0.0.9")
    response = client.post(
        "/api/v1/auth/login",
        {"email": "x@alpha.test", "password": "wrong-password"},
        format="json",
        HTTP_HOST=tenant_a.host,
        HTTP_X_FORWARDED_FOR="not-an-ip",
    )
    assert response.status_code == 401  # not a 500 from an unparsable address


def _connections_in_use() -> int:
    pool = get_redis_connection("default").connection_pool
    return len(list(pool._get_in_use_connections()))


@pytest.mark.django_db
def test_a_request_over_the_limit_never_reaches_its_view(
    api: APIClient, tenant_a, settings, monkeypatch
) -> None:
    """A refused request never runs its view."""
    from apps.core.apis import InfoApi

    served: list[str] = []
    original = InfoApi.get

    def counting_get(self, request):
        served.append(request.path)
        return original(self, request)

    monkeypatch.setattr(InfoApi, "get", counting_get)
    settings.API_RATE_LIMIT = "2/m"
    assert [get(api, tenant_a.host).status_code for _ in range(3)] == [200, 200, 429]
    assert len(served) == 2


@pytest.mark.django_db
def test_a_request_that_reaches_no_view_is_counted_and_gives_the_connection_back(
    api: APIClient, tenant_a, settings, monkeypatch
) -> None:
    """Something between the gateway and the view fails (here the URL resolution): the
    answer still carries the limit, over it is still a 429, and the connection goes back to
    the pool."""
    from django.core.handlers.base import BaseHandler

    def broken_resolve(self, request):
        raise RuntimeError("resolver down")

    get(api, tenant_a.host)  # warm: the tenant is cached, its connection released
    in_use = _connections_in_use()
    monkeypatch.setattr(BaseHandler, "resolve_request", broken_resolve)
    settings.API_RATE_LIMIT = "3/m"  # the warm-up counted as the first
    first = get(api, tenant_a.host)
    assert first.status_code == 500 and first["X-RateLimit-Remaining"] == "1"
    assert get(api, tenant_a.host).status_code == 500
    refused = get(api, tenant_a.host)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"
    assert _connections_in_use() == in_use


@pytest.mark.django_db
def test_a_flushed_script_cache_is_reloaded_and_counts_once(
    api: APIClient, tenant_a, settings
) -> None:
    settings.API_RATE_LIMIT = "5/m"
    assert get(api, tenant_a.host)["X-RateLimit-Remaining"] == "4"
    get_redis_connection("default").script_flush()  # a restarted or flushed server
    response = get(api, tenant_a.host)
    assert response.status_code == 200 and response["X-RateLimit-Remaining"] == "3"
    assert get(api, tenant_a.host)["X-RateLimit-Remaining"] == "2"


@pytest.mark.django_db
def test_a_connection_lost_before_the_reply_is_tried_once_more(
    api: APIClient, tenant_a, settings, monkeypatch
) -> None:
    from redis.connection import AbstractConnection
    from redis.exceptions import ConnectionError as RedisConnectionError

    get(api, tenant_a.host)  # warm
    in_use = _connections_in_use()
    settings.API_RATE_LIMIT = "5/m"
    original = AbstractConnection.read_response
    lose = [True]

    def flaky(self, *args, **kwargs):
        if lose:
            lose.pop()
            self.disconnect()
            raise RedisConnectionError("Connection closed by server.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "read_response", flaky)
    response = get(api, tenant_a.host)
    assert not lose  # the loss happened, in the gateway's read
    assert response.status_code == 200 and "X-RateLimit-Remaining" in response
    assert _connections_in_use() == in_use


@pytest.mark.django_db
def test_a_connection_that_will_not_come_up_is_tried_once_more(
    api: APIClient, tenant_a, settings, monkeypatch
) -> None:
    """A connection that will not come up this once: the second try counts the request."""
    from redis.connection import ConnectionPool
    from redis.exceptions import ConnectionError as RedisConnectionError

    get(api, tenant_a.host)  # warm
    settings.API_RATE_LIMIT = "5/m"
    original = ConnectionPool.get_connection
    fail = [True]

    def flaky(self, *args, **kwargs):
        if fail:
            fail.pop()
            raise RedisConnectionError("Error 111 connecting to redis. Connection refused.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConnectionPool, "get_connection", flaky)
    response = get(api, tenant_a.host)
    assert not fail
    assert response.status_code == 200 and response["X-RateLimit-Remaining"] == "3"


@pytest.mark.django_db
def test_a_stored_rate_past_any_bound_does_not_open_the_gate(
    api: APIClient, tenant_a, settings
) -> None:
    # A window past Redis's expiry range made every count fail, and the gateway fails open.
    from apps.tenants.models import Tenant
    from apps.tenants.resolution import tenant_cache_invalidate

    settings.API_RATE_LIMIT = "1/m"
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(
        settings={"rate_limit": "1/99999999999999999999d"}
    )
    tenant_cache_invalidate(hostnames=[tenant_a.host])
    assert get(api, tenant_a.host).status_code == 200
    assert get(api, tenant_a.host).status_code == 429
