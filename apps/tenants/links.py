"""Where a tenant is reached, as printed to people (the API's answer, the admin, manage.py).

As for the other links the platform builds (apps/accounts/services/links.py,
apps/sso, apps/keys): the scheme is PLATFORM_URL_SCHEME, and the port is the one
the person reached us on (the request's Host header: every host is served on the
same port), else PLATFORM_URL_PORT (a command has no request).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _port(request: HttpRequest | None) -> str:
    if request is None:
        return str(settings.PLATFORM_URL_PORT or "")
    _host, port = split_domain_port(request.get_host())
    return port


def tenant_url(hostname: str, *, request: HttpRequest | None = None, path: str = "/") -> str:
    """`{scheme}://{hostname}[:port]{path}` for one of a tenant's host names."""
    scheme = str(settings.PLATFORM_URL_SCHEME)
    port = _port(request)
    suffix = f":{port}" if port and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{hostname}{suffix}{path}"
