"""GatewayMiddleware: identify the API request and count it, in one Redis round trip."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core import metrics, ratelimit
from apps.core.envelope import error_response
from apps.core.gateway.identity import identify
from apps.core.gateway.state import GatewayState, gateway_state_set


class GatewayMiddleware:
    """Every request to settings.RATE_LIMIT_PATH_PREFIXES: who it is (apps.core.gateway.identity)
    and the tenant's rate limit, decided with one Redis round trip that also reads the keys the
    identifier asked for. Over the limit: 429, and no view runs. Every answer carries the
    X-RateLimit-* headers. The outcome is the request's `GatewayState`.

    When Redis cannot be reached the limit fails open (the request is served, a warning
    logged) and the state says so: its readers go to the database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefixes = tuple(settings.RATE_LIMIT_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(self.prefixes):
            return self.get_response(request)
        tenant = getattr(request, "tenant", None)
        identity = identify(request)
        trip = ratelimit.hit(
            scope=getattr(tenant, "schema_name", "public"),
            client=identity.client,
            rate=ratelimit.rate_for(getattr(tenant, "settings", None)),
            read_keys=identity.read_keys,
        )
        result = trip.result if trip is not None else None
        gateway_state_set(
            request,
            GatewayState(
                identity=identity,
                rate_limit=result,
                redis_available=trip is not None,
                values=dict(zip(identity.read_keys, trip.values, strict=True)) if trip else {},
            ),
        )
        if result is None:
            return self.get_response(request)
        response = self.get_response(request) if result.allowed else _rate_limited(request, result)
        for name, value in result.headers().items():
            response[name] = value
        return response


def _rate_limited(request: HttpRequest, result: ratelimit.RateLimitResult) -> HttpResponse:
    metrics.ratelimit_refused("api")
    response = error_response(
        429, "RATE_LIMITED", "Rate limit exceeded", {"retry_after": result.reset}, request=request
    )
    response["Retry-After"] = str(result.reset)
    return response
