"""URLs of a tenant host (`<slug>.<PLATFORM_BASE_DOMAIN>`): the tenant's own API and admin."""

from collections.abc import Sequence

from django.urls import URLPattern, URLResolver, include, path

from apps.accounts.urls import auth_urlpatterns, users_urlpatterns
from platform_site.urls_common import (
    api_not_found_pattern,
    api_v1,
    common_patterns,
    handler400,
    handler403,
    handler404,
    handler500,
)

# The API's groups, in the order they are matched (bench/rbac_tasks.py mounts a view
# before them).
api_v1_groups: list[Sequence[URLPattern | URLResolver]] = [
    users_urlpatterns,  # the busiest first: every client reads /users/me
    auth_urlpatterns,
    [
        path("", include("apps.rbac.urls")),
        path("", include("apps.tenants.urls_own")),
        path("", include("apps.organizations.urls")),
        path("", include("apps.audit.urls")),
        path("", include("apps.notifications.urls")),
        path("", include("apps.sso.urls")),
        path("", include("apps.mfa.urls")),
    ],
]

urlpatterns = [
    api_v1(*api_v1_groups),
    # Before the admin's own patterns (its catch-all would answer first).
    path("admin/sso/", include("apps.sso.admin_urls")),
    *common_patterns("platform_site.urls"),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
