"""Links mailed to users (password reset, e-mail confirmation): on the tenant's own host."""

from __future__ import annotations

from django.conf import settings
from django_tenants.utils import get_tenant_domain_model

from apps.core.tenancy import current_schema


def tenant_host() -> str:
    """The current schema's primary domain (the platform's base domain for the public one),
    with PLATFORM_URL_PORT when set."""
    domain = (
        get_tenant_domain_model()
        .objects.filter(tenant__schema_name=current_schema())
        .order_by("-is_primary", "id")
        .first()
    )
    host = domain.domain if domain else settings.PLATFORM_BASE_DOMAIN
    if settings.PLATFORM_URL_PORT:  # mailed from a worker: no request to copy the port from
        host = f"{host}:{settings.PLATFORM_URL_PORT}"
    return host


def tenant_link(template: str, *, token: str) -> str:
    """`template` ({scheme}, {host}, {token}) filled in for the current schema."""
    return template.format(scheme=settings.PLATFORM_URL_SCHEME, host=tenant_host(), token=token)


def sign_in_link(*, is_staff: bool) -> str:
    """Where a user of the current schema signs in (the welcome mail's link): SIGN_IN_URL when
    set, else the admin for staff users (the only ones it lets in) and the API docs for others."""
    template = settings.SIGN_IN_URL or (
        "{scheme}://{host}/admin/" if is_staff else "{scheme}://{host}/api/docs/"
    )
    return template.format(scheme=settings.PLATFORM_URL_SCHEME, host=tenant_host())
