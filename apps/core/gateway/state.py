"""What the gateway learned about one request: one typed object, set once, read by accessors.

The object lives in the request's `gateway` attribute. HttpRequest declares no such
attribute, so it is written and read here only, through `vars()`, and everyone else uses
`gateway_state` (and `redis_values`), typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.core.gateway.identity import GatewayIdentity
from apps.core.ratelimit import RateLimitResult

_ATTRIBUTE = "gateway"


@dataclass
class GatewayState:
    identity: GatewayIdentity
    rate_limit: RateLimitResult | None  # None: no limit applies, or Redis was unavailable
    redis_available: bool
    values: Mapping[str, bytes | None] = field(default_factory=dict)  # key -> value read


def gateway_state_set(request: HttpRequest, state: GatewayState) -> None:
    vars(request)[_ATTRIBUTE] = state


def gateway_state(request: HttpRequest) -> GatewayState | None:
    """The gateway's state of `request`; None for a request the gateway does not cover."""
    found = vars(request).get(_ATTRIBUTE)
    return found if isinstance(found, GatewayState) else None


def redis_values(request: HttpRequest | None, keys: Sequence[str]) -> list[bytes | None] | None:
    """The values of `keys`: as the gateway read them in its round trip, else with one MGET.

    None when Redis is unavailable (the gateway could not reach it, or the MGET failed):
    the caller then goes to its source of truth."""
    state = gateway_state(request) if request is not None else None
    if state is not None:
        if not state.redis_available:
            return None
        if all(key in state.values for key in keys):
            return [state.values[key] for key in keys]
    try:
        return list(get_redis_connection("default").mget(keys))
    except RedisError:
        return None
