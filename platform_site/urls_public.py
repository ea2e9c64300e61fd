"""URLs of the public host (PLATFORM_BASE_DOMAIN): platform operators and tenant provisioning."""

from django.urls import include, path

from platform_site.urls_common import (
    api_not_found_pattern,
    common_patterns,
    handler400,
    handler403,
    handler404,
    handler500,
)

urlpatterns = [
    *common_patterns("platform_site.urls_public"),
    path("api/v1/", include("apps.tenants.urls")),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
