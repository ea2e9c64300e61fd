"""/metrics after known traffic: exact counts by route template, method, status and tenant;
who may read it; the bounded tenant label; nothing at all when metrics are off."""

from __future__ import annotations

import uuid

import pytest
from django.core.signals import request_started
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.core.metrics.labels import tenant_count_forget
from tests.conftest import ADMIN_PASSWORD
from tests.core.metrics_samples import delta, scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tenant_label_on(settings):
    settings.METRICS_TENANT_LABEL = True
    settings.METRICS_TENANT_LABEL_MAX = 1_000_000
    tenant_count_forget()
    yield
    tenant_count_forget()


def _client() -> APIClient:
    """A client of its own address, so no rate-limit bucket is shared with another."""
    n = uuid.uuid4().int
    return APIClient(REMOTE_ADDR=f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}")


def _login(client: APIClient, host: str, email: str, password: str) -> int:
    response = client.post(
        "/api/v1/auth/login", {"email": email, "password": password}, format="json", HTTP_HOST=host
    )
    return int(response.status_code)


def test_known_traffic_gives_exact_counts(tenant_a, settings) -> None:
    schema = tenant_a.schema
    watcher = APIClient()
    before = scrape(watcher)

    # Given: 3 answered requests to one route, 2 to another (no tenant: health is unscoped),
    # a path no pattern serves, a route that answers 404 itself, one sign-in that fails and
    # one that succeeds, an account locked out, and one request refused by the gateway.
    client = _client()
    for _ in range(3):
        assert client.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    for _ in range(2):
        assert client.get("/health/live", HTTP_HOST="localhost").status_code == 200
    assert client.get("/no-such-page", HTTP_HOST=tenant_a.host).status_code == 404
    assert client.get("/api/v1/no-such-endpoint", HTTP_HOST=tenant_a.host).status_code == 404
    assert _login(_client(), tenant_a.host, tenant_a.admin_email, "wrong-password") == 401
    assert _login(_client(), tenant_a.host, tenant_a.admin_email, ADMIN_PASSWORD) == 200
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "login_account": "1/5m"}
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    assert _login(_client(), tenant_a.host, stranger, "guess-1") == 401
    assert _login(_client(), tenant_a.host, stranger, "guess-2") == 429
    settings.API_RATE_LIMIT = "1/m"
    limited = _client()
    assert limited.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    assert limited.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 429

    # When: Prometheus scrapes.
    after = scrape(watcher)

    # Then: every request is counted once, by its route template, never its path.
    def requests(route: str, status: str, tenant: str, method: str = "GET") -> float:
        labels = {"route": route, "method": method, "status": status, "tenant": tenant}
        return delta(before, after, "http_requests_total", **labels)

    assert requests("api/v1/info", "200", schema) == 4
    assert requests("api/v1/info", "429", schema) == 1
    assert requests("health/live", "200", "none") == 2
    assert requests("<unmatched>", "404", schema) == 1
    assert requests("^api/", "404", schema) == 1
    assert requests("api/v1/auth/login", "401", schema, "POST") == 2
    assert requests("api/v1/auth/login", "200", schema, "POST") == 1
    assert requests("api/v1/auth/login", "429", schema, "POST") == 1
    assert not any(
        name == "http_requests_total" and "/no-such" in dict(labels).get("route", "")
        for name, labels in after
    )

    def timed(route: str, status_class: str, tenant: str) -> float:
        labels = {"route": route, "method": "GET", "status_class": status_class, "tenant": tenant}
        return delta(before, after, "http_request_duration_seconds_count", **labels)

    assert timed("api/v1/info", "2xx", schema) == 4
    assert timed("api/v1/info", "4xx", schema) == 1
    assert timed("health/live", "2xx", "none") == 2
    info_slowest = delta(
        before, after, "http_request_duration_seconds_bucket",
        route="api/v1/info", method="GET", status_class="2xx", tenant=schema, le="+Inf",
    )  # fmt: skip
    assert info_slowest == 4

    # SQL statements per request: one observation per request, and a sign-in reads the user.
    assert delta(before, after, "db_queries_per_request_count", route="api/v1/info") == 5
    assert delta(before, after, "db_queries_per_request_count", route="api/v1/auth/login") == 4
    assert delta(before, after, "db_queries_per_request_sum", route="api/v1/auth/login") >= 2

    # Sign-ins: 3 let through (2 failed: attempts minus successes), 1 refused as locked out.
    assert delta(before, after, "auth_signin_attempts_total") == 3
    assert delta(before, after, "auth_signin_successes_total") == 1
    assert delta(before, after, "auth_signin_lockouts_total") == 1
    assert delta(before, after, "ratelimit_refusals_total", scope="login_account") == 1
    assert delta(before, after, "ratelimit_refusals_total", scope="api") == 1


def test_the_queries_of_a_request_are_counted_as_django_logs_them(tenant_a) -> None:
    client, watcher = _client(), APIClient()
    client.get("/api/v1/info", HTTP_HOST=tenant_a.host)  # warm: the tenant lookup is cached
    before = scrape(watcher)
    # Django's own query log of the same request is the reference (kept across the request:
    # Django empties it when a request starts).
    request_started.disconnect(reset_queries)
    try:
        with CaptureQueriesContext(connection) as queries:
            assert _login(client, tenant_a.host, tenant_a.admin_email, "wrong-password") == 401
    finally:
        request_started.connect(reset_queries)
    logged = len(queries)  # read now: the next request empties the log
    after = scrape(watcher)
    assert logged >= 1
    route = "api/v1/auth/login"
    assert delta(before, after, "db_queries_per_request_sum", route=route) == logged


def test_the_tenant_label_becomes_all_at_the_bound(tenant_a, settings) -> None:
    settings.METRICS_TENANT_LABEL_MAX = 1  # there are at least two tenants
    tenant_count_forget()
    watcher, client = APIClient(), _client()
    before = scrape(watcher)
    assert client.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    after = scrape(watcher)
    labels = {"route": "api/v1/info", "method": "GET", "status": "200"}
    assert delta(before, after, "http_requests_total", tenant="all", **labels) == 1
    assert delta(before, after, "http_requests_total", tenant=tenant_a.schema, **labels) == 0


def test_the_tenant_label_can_be_turned_off(tenant_a, settings) -> None:
    settings.METRICS_TENANT_LABEL = False
    watcher, client = APIClient(), _client()
    before = scrape(watcher)
    assert client.get("/health/live", HTTP_HOST="localhost").status_code == 200
    assert client.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    after = scrape(watcher)
    base = {"method": "GET", "status": "200", "tenant": "all"}
    assert delta(before, after, "http_requests_total", route="api/v1/info", **base) == 1
    assert delta(before, after, "http_requests_total", route="health/live", **base) == 1


# ------------------------------------------------------------------ who may read it


def _metrics(client: APIClient, **extra):
    return client.get("/metrics", HTTP_HOST="localhost", **extra)


def test_without_token_or_networks_only_a_direct_loopback_request_may_read(settings) -> None:
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert _metrics(APIClient(REMOTE_ADDR="127.0.0.1")).status_code == 200
    assert _metrics(APIClient(REMOTE_ADDR="::1")).status_code == 200
    assert _metrics(APIClient(REMOTE_ADDR="10.1.2.3")).status_code == 403
    # A proxy on the same machine makes every client look like loopback.
    proxied = _metrics(APIClient(REMOTE_ADDR="127.0.0.1"), HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.status_code == 403
    assert b"http_requests_total" not in proxied.content


def test_a_token_is_required_once_set(settings) -> None:
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "s3cret-token-for-tests", []
    anywhere = APIClient(REMOTE_ADDR="198.51.100.7")
    missing = _metrics(anywhere)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert _metrics(anywhere, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert _metrics(anywhere, HTTP_AUTHORIZATION="Basic s3cret-token-for-tests").status_code == 401
    # Loopback is no way around a token.
    assert _metrics(APIClient(REMOTE_ADDR="127.0.0.1")).status_code == 401
    right = _metrics(anywhere, HTTP_AUTHORIZATION="Bearer s3cret-token-for-tests")
    assert right.status_code == 200
    assert b"# TYPE http_requests_total counter" in right.content
    assert "s3cret" not in right.content.decode()


def test_networks_and_token_must_both_match_when_both_are_set(settings) -> None:
    settings.METRICS_TOKEN = "s3cret-token-for-tests"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "2001:db8::/32"]
    token = {"HTTP_AUTHORIZATION": "Bearer s3cret-token-for-tests"}
    assert _metrics(APIClient(REMOTE_ADDR="10.20.3.4"), **token).status_code == 200
    assert _metrics(APIClient(REMOTE_ADDR="2001:db8::5"), **token).status_code == 200
    assert _metrics(APIClient(REMOTE_ADDR="10.21.3.4"), **token).status_code == 403
    assert _metrics(APIClient(REMOTE_ADDR="10.20.3.4")).status_code == 401
    settings.METRICS_TOKEN = ""
    assert _metrics(APIClient(REMOTE_ADDR="10.20.3.4")).status_code == 200
    assert _metrics(APIClient(REMOTE_ADDR="127.0.0.1")).status_code == 403


def test_metrics_answer_on_any_host_and_only_to_get(tenant_a) -> None:
    loopback = APIClient(REMOTE_ADDR="127.0.0.1")
    # Prometheus scrapes by address: no tenant, no ALLOWED_HOSTS entry, still answered.
    for host in ("localhost", tenant_a.host, "10.0.0.5:8000", "unknown.example.org"):
        assert loopback.get("/metrics", HTTP_HOST=host).status_code == 200, host
    assert loopback.post("/metrics", HTTP_HOST="localhost").status_code == 405
    assert loopback.head("/metrics", HTTP_HOST="localhost").status_code == 200


def test_scrapes_are_not_counted_as_requests() -> None:
    watcher = APIClient()
    first = scrape(watcher)
    second = scrape(watcher)
    assert not any(
        dict(labels).get("route") == "/metrics" or "metrics" in dict(labels).get("route", "")
        for name, labels in second
        if name == "http_requests_total"
    )
    assert value(
        second,
        "http_requests_total",
        route="<unmatched>",
        method="GET",
        status="200",
        tenant="none",
    ) == value(
        first, "http_requests_total", route="<unmatched>", method="GET", status="200", tenant="none"
    )


def test_with_metrics_off_nothing_is_counted_and_there_is_no_endpoint(tenant_a, settings) -> None:
    watcher = APIClient(REMOTE_ADDR="127.0.0.1")
    before = scrape(watcher)
    settings.METRICS_ENABLED = False
    off = APIClient(REMOTE_ADDR="127.0.0.1")  # a new client builds its middleware chain anew
    assert off.get("/metrics", HTTP_HOST="localhost").status_code == 404
    assert off.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    assert _login(_client(), tenant_a.host, tenant_a.admin_email, "wrong-password") == 401
    settings.METRICS_ENABLED = True
    after = scrape(watcher)
    labels = {"route": "api/v1/info", "method": "GET", "status": "200", "tenant": tenant_a.schema}
    assert delta(before, after, "http_requests_total", **labels) == 0
    assert delta(before, after, "auth_signin_attempts_total") == 0


def test_a_method_of_the_clients_invention_makes_no_new_series(tenant_a) -> None:
    watcher, client = APIClient(), _client()
    before = scrape(watcher)
    for method in ("BREW", "X-ANY-1", "X-ANY-2"):
        assert client.generic(method, "/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 405
    after = scrape(watcher)
    labels = {"route": "api/v1/info", "status": "405", "tenant": tenant_a.schema}
    assert delta(before, after, "http_requests_total", method="other", **labels) == 3
    assert not any(dict(key).get("method") in {"BREW", "X-ANY-1", "X-ANY-2"} for _, key in after)
