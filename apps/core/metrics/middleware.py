"""The request metrics, and /metrics itself, for every request the web process answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from apps.core.metrics.labels import tenant_label

# The route label of a request that reached no view (an unknown host, a path nothing matches).
UNMATCHED = "<unmatched>"
# Any other method is "other": a client chooses the method, and must not choose new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

logger = structlog.get_logger("apps.core.metrics")


class _QueryCounter:
    """A connection execute wrapper that counts the statements of one request."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], *args: Any) -> Any:
        self.count += 1
        return execute(*args)


def route_of(request: HttpRequest, response: HttpResponse) -> str:
    """The URL pattern that served the request (`api/v1/users/<int:pk>`), never its path."""
    match = getattr(request, "resolver_match", None)
    if match is None and response.status_code != 404:
        # Answered before any view (the gateway's 429, a 413): the route it was meant for.
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            match = None
    if match is None:
        return UNMATCHED
    return str(match.route)


class MetricsMiddleware:
    """First in the chain: counts and times each request by route template, method, status
    and tenant, counts its SQL statements, and answers METRICS_PATH itself, on any host
    (Prometheus scrapes by address; no tenant, host check or redirect stands in the way).
    Not loaded at all when METRICS_ENABLED is off."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.METRICS_ENABLED:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.path = settings.METRICS_PATH

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == self.path:
            from apps.core.metrics.views import metrics_view

            return metrics_view(request)
        started = time.perf_counter()
        counter = _QueryCounter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        try:
            self._record(request, response, time.perf_counter() - started, counter.count)
        except Exception as exc:  # noqa: BLE001  (a request is never failed for its metrics)
            logger.warning("metrics_record_failed", error=type(exc).__name__)
        return response

    @staticmethod
    def _record(request: HttpRequest, response: HttpResponse, elapsed: float, queries: int) -> None:
        # Imported here, not when the middleware is built: with gunicorn's preload that is in
        # the master, before gunicorn.conf.py's on_starting has set the multiprocess directory.
        from apps.core.metrics import definitions as m

        route = route_of(request, response)
        method = request.method if request.method in METHODS else "other"
        tenant = tenant_label(request)
        status = response.status_code
        m.HTTP_REQUESTS.labels(route, method, str(status), tenant).inc()
        m.HTTP_REQUEST_DURATION.labels(route, method, f"{status // 100}xx", tenant).observe(elapsed)
        m.DB_QUERIES_PER_REQUEST.labels(route).observe(queries)
