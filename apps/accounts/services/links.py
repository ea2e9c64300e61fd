"""Links mailed to users (password reset, e-mail confirmation): on the tenant's own host."""

from __future__ import annotations

from django.conf import settings

from apps.core.tenancy import current_schema


def tenant_host() -> str:
    """The current schema's primary domain (the platform's base domain for the public one)."""
    from apps.tenants.models import Domain

    domain = (
        Domain.objects.filter(tenant__schema_name=current_schema())
        .order_by("-is_primary", "id")
        .first()
    )
    return domain.domain if domain else settings.PLATFORM_BASE_DOMAIN


def tenant_link(template: str, *, token: str) -> str:
    """`template` ({scheme}, {host}, {token}) filled in for the current schema."""
    return template.format(scheme=settings.PLATFORM_URL_SCHEME, host=tenant_host(), token=token)
