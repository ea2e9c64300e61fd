"""URL patterns served on every host (public and tenant)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import health
from apps.core.apis import InfoApi
from apps.core.envelope import error_response
from apps.keys import wellknown


def common_patterns(urlconf: str) -> list[URLPattern | URLResolver]:
    schema_view = SpectacularAPIView.as_view(urlconf=urlconf)
    return [
        path("", RedirectView.as_view(url="/api/docs/", permanent=False)),
        path("health/live", health.live, name="health-live"),
        path("health/ready", health.ready, name="health-ready"),
        path(".well-known/jwks.json", wellknown.jwks, name="jwks"),
        path(
            ".well-known/openid-configuration",
            wellknown.openid_configuration,
            name="openid-configuration",
        ),
        path("api/schema/", schema_view, name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
        path("admin/", admin.site.urls),
    ]


def api_v1(*groups: Sequence[URLPattern | URLResolver]) -> URLResolver:
    """Every `/api/v1/` pattern of a host under one prefix, first in its URLconf: an API
    request is matched among the API's own patterns (`info`, then the first group), not
    after the admin's and the documentation's; a path none of them matches goes on to
    `api_not_found_pattern`."""
    patterns: list[URLPattern | URLResolver] = [path("info", InfoApi.as_view(), name="info")]
    patterns += [pattern for group in groups for pattern in group]
    return path("api/v1/", include(patterns))


def api_not_found_pattern() -> URLPattern:
    """Last pattern of each URLconf: any other /api/ path is a 404 in the envelope (with DEBUG on
    too, where Django would otherwise answer with its HTML debug page)."""
    return re_path(r"^api/", api_not_found, name="api-not-found")


def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return error_response(404, "NOT_FOUND", "Resource not found", request=request)


handler400 = "apps.core.error_handling.handler400"
handler403 = "apps.core.error_handling.handler403"
handler404 = "apps.core.error_handling.handler404"
handler500 = "apps.core.error_handling.handler500"

__all__ = [
    "api_not_found_pattern",
    "api_v1",
    "common_patterns",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
]
