"""URLs of a tenant host (`<slug>.<PLATFORM_BASE_DOMAIN>`): the tenant's own API and admin."""

from django.urls import include, path

from apps.accounts.urls import auth_urlpatterns, users_urlpatterns
from platform_site.urls_common import (
    api_not_found_pattern,
    common_patterns,
    handler400,
    handler403,
    handler404,
    handler500,
)

urlpatterns = [
    # Before the admin's own patterns (its catch-all would answer first).
    path("admin/sso/", include("apps.sso.admin_urls")),
    *common_patterns("platform_site.urls"),
    path("api/v1/", include(auth_urlpatterns)),
    path("api/v1/", include(users_urlpatterns)),
    path("api/v1/", include("apps.rbac.urls")),
    path("api/v1/", include("apps.tenants.urls_own")),
    path("api/v1/", include("apps.organizations.urls")),
    path("api/v1/", include("apps.audit.urls")),
    path("api/v1/", include("apps.notifications.urls")),
    path("api/v1/", include("apps.sso.urls")),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
