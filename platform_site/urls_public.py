"""URLs of the public host (PLATFORM_BASE_DOMAIN): platform operators and tenant provisioning."""

from django.urls import include, path

from apps.accounts.urls import auth_urlpatterns
from apps.audit.urls import public_urlpatterns as audit_urlpatterns
from apps.mfa.urls import auth_urlpatterns as mfa_auth_urlpatterns
from platform_site.urls_common import (
    api_not_found_pattern,
    api_v1,
    common_patterns,
    handler400,
    handler403,
    handler404,
    handler500,
)

urlpatterns = [
    api_v1(
        # Platform operators sign in on the public host with the same endpoints.
        auth_urlpatterns,
        mfa_auth_urlpatterns,
        [path("", include("apps.tenants.urls"))],
        audit_urlpatterns,
    ),
    *common_patterns("platform_site.urls_public"),
    api_not_found_pattern(),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
