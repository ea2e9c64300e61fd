"""URLs of the public host (PLATFORM_BASE_DOMAIN): platform operators and tenant provisioning."""

from django.urls import include, path

from apps.accounts.urls import auth_urlpatterns
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
    # Platform operators sign in on the public host with the same endpoints.
    path("api/v1/", include(auth_urlpatterns)),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
