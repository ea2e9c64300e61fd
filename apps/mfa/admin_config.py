"""The admin app's configuration with the site that asks staff for their second factor.

In its own module: INSTALLED_APPS imports an AppConfig before the models are ready, and
the site's module needs them."""

from apps.core.admin_site import PlatformAdminConfig


class MfaAdminConfig(PlatformAdminConfig):
    default_site = "apps.mfa.admin_site.MfaAdminSite"
