"""Who an API request is, decided once at the gateway and read in the rate limit's round trip.

An identifier (settings.GATEWAY_IDENTIFIERS) looks at the request without any
I/O (say, verifying a bearer token's signature) and answers with the bucket
the request counts against plus the Redis keys it needs read (say, the token's
revocation state). The rate-limit script increments the counter and reads those
keys in the same round trip; `complete` then receives the values (None when
Redis could not be reached, so it must fall back to the database).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string

ReadValues = list[bytes | None] | None


@dataclass
class GatewayIdentity:
    client: str  # the rate-limit bucket, e.g. "user:12" or "ip:203.0.113.9"
    read_keys: Sequence[str] = field(default_factory=tuple)
    complete: Callable[[ReadValues], None] | None = None


Identifier = Callable[[HttpRequest], GatewayIdentity | None]


@cache
def identifiers() -> tuple[Identifier, ...]:
    return tuple(import_string(path) for path in getattr(settings, "GATEWAY_IDENTIFIERS", []))


def session_or_ip_identity(request: HttpRequest) -> GatewayIdentity:
    """The fallback: the signed-in (session) user, else the client address."""
    from apps.core.net import client_ip

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
