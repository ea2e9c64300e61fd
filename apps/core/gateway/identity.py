"""Who an API request counts as, decided without I/O.

An identifier (settings.GATEWAY_IDENTIFIERS, tried in order, the first answer wins) answers
with the rate-limit bucket, the Redis keys it wants read in the gateway's round trip and what
it decoded (the bearer token's claims), or None to pass. Without an answer the request counts
as its session user, else as its client address.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string

from apps.core.net import client_ip


@dataclass(frozen=True)
class GatewayIdentity:
    client: str  # the rate-limit bucket, e.g. "user:12" or "ip:203.0.113.9"
    read_keys: Sequence[str] = ()
    credentials: object = None  # what the identifier decoded, for its authentication class


Identifier = Callable[[HttpRequest], GatewayIdentity | None]


@cache
def identifiers() -> tuple[Identifier, ...]:
    return tuple(import_string(path) for path in getattr(settings, "GATEWAY_IDENTIFIERS", []))


def session_or_ip_identity(request: HttpRequest) -> GatewayIdentity:
    """The fallback: the signed-in (session) user, else the client address."""
    # Without a session cookie there is no session user: skip the lazy lookup.
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return GatewayIdentity(client=f"user:{user.pk}")
    return GatewayIdentity(client=f"ip:{client_ip(request)}")


def identify(request: HttpRequest) -> GatewayIdentity:
    for identifier in identifiers():
        identity = identifier(request)
        if identity is not None:
            return identity
    return session_or_ip_identity(request)
