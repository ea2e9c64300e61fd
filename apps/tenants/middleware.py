"""Resolve the tenant from the Host header and point the connection at its schema.

Replaces django-tenants' TenantMainMiddleware: the lookup is cached (see
`resolution`), an unknown or inactive tenant's host gets a 404 in the error
envelope, or a small HTML page for a browser (never the public schema's pages
or data), and on the public API host a tenant may be named with the `X-Tenant`
header when TENANT_HEADER_ENABLED.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.template.loader import render_to_string

from apps.core.envelope import error_response
from apps.core.tenancy import tenant_connection
from apps.tenants.links import tenant_url
from apps.tenants.models import Tenant
from apps.tenants.resolution import public_tenant, tenant_for_host, tenant_for_slug
from apps.tenants.validators import SLUG_RE


def _wants_html(request: HttpRequest) -> bool:
    """A browser's page load: it asks for HTML, for a path outside the API. Anything else
    (an API client, curl's `*/*`, `Accept: application/json`) keeps the error envelope."""
    if request.path.startswith(tuple(settings.API_PATH_PREFIXES)):
        return False
    accept = request.META.get("HTTP_ACCEPT", "")
    if "json" in accept:
        return False
    return "text/html" in accept or "application/xhtml+xml" in accept


def _not_found(request: HttpRequest) -> HttpResponse:
    if _wants_html(request):
        hostname, _port = split_domain_port(request.get_host())
        public_host = (settings.PUBLIC_HOSTS or [settings.PLATFORM_BASE_DOMAIN])[0]
        # Rendered without the request: no session or user exists yet at this point.
        page = render_to_string(
            "tenants/unknown_host.html",
            {"host": hostname, "public_url": tenant_url(public_host, request=request)},
        )
        return HttpResponse(page, status=404)
    return error_response(404, "NOT_FOUND", "No tenant is served at this address", request=request)


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.public_hosts = frozenset(h.lower() for h in settings.PUBLIC_HOSTS)
        self.header_hosts = frozenset(h.lower() for h in settings.TENANT_HEADER_HOSTS)
        self.header_enabled: bool = settings.TENANT_HEADER_ENABLED
        self.unscoped_prefixes = tuple(settings.TENANT_UNSCOPED_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_connection().set_schema_to_public()
        if request.path.startswith(self.unscoped_prefixes):
            # Health probes answer on any host (load balancers use IPs) and touch no tenant data.
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
            return self.get_response(request)

        hostname, _port = split_domain_port(request.get_host())
        tenant: Tenant | None
        if hostname in self.public_hosts:
            tenant = public_tenant()
            header = request.META.get("HTTP_X_TENANT", "").strip().lower()
            if header and self.header_enabled and hostname in self.header_hosts:
                # Only a well-formed slug is looked up (and cached as a miss): no NUL or
                # other junk reaches the database or the cache's keys.
                tenant = tenant_for_slug(header) if SLUG_RE.fullmatch(header) else None
        else:
            tenant = tenant_for_host(hostname)

        if tenant is None or not tenant.is_active:
            return _not_found(request)

        request.tenant = tenant  # type: ignore[attr-defined]
        tenant_connection().set_tenant(tenant)
        if tenant.is_public:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
        structlog.contextvars.bind_contextvars(tenant=tenant.schema_name)
        return self.get_response(request)
