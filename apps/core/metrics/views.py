"""/metrics: the Prometheus text format, for those `access` lets in."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from apps.core.metrics.access import metrics_access
from apps.core.metrics.exposition import CONTENT_TYPE, exposition
from apps.core.net import client_ip


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET (or HEAD) only. Every process's counters (the multiprocess directory when there is
    one) and what is read at scrape time; a reading that fails is left out, never a 500."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("method not allowed\n", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    verdict = metrics_access(
        address=client_ip(request),
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        proxied=bool(
            request.META.get("HTTP_X_FORWARDED_FOR") or request.META.get("HTTP_FORWARDED")
        ),
    )
    if verdict.status != 200:
        response = HttpResponse(
            f"{verdict.reason}\n", status=verdict.status, content_type="text/plain"
        )
        if verdict.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(exposition(scrape_time=True), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
