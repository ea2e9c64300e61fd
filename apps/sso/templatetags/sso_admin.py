"""What the admin's templates ask of the tenant's identity providers (the admin site, in
apps.core, sits below this app and does not ask itself)."""

from __future__ import annotations

from django import template
from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import current_schema
from apps.sso.models import IdentityProvider

register = template.Library()


@register.simple_tag
def sso_available() -> bool:
    """Whether the tenant has an enabled identity provider to sign in with (operators on the
    public host have none)."""
    if current_schema() == get_public_schema_name():
        return False
    return IdentityProvider.objects.filter(enabled=True).exists()
