"""URLs of a tenant host (`<slug>.<PLATFORM_BASE_DOMAIN>`): the tenant's own API and admin."""

from platform_site.urls_common import (
    api_not_found_pattern,
    common_patterns,
    handler400,
    handler403,
    handler404,
    handler500,
)

urlpatterns = [
    *common_patterns("platform_site.urls"),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
