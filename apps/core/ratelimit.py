"""The gateway rate limit: a fixed window per client, counted atomically in Redis.

One round trip per request: a Lua script increments the window's counter and
sets its expiry in the same atomic step (INCR then EXPIRE in two calls would
leave a counter without expiry when the second call is lost), and reads the
keys the gateway asks for (apps/core/gateway/).

Why not django-ratelimit here: its `get_usage` costs two round trips
(`cache.add` then `cache.incr`) on every request and reports no reset instant.
The brute-force limits of sign-in, refresh and password reset are not fixed
windows: they keep their promise over any span (apps/accounts/limits.py).

When Redis cannot be reached the gateway limit fails open (the request is
served and a warning logged): readiness reports the cache as down, and the
per-account login limits decide for themselves.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = structlog.get_logger("apps.core.ratelimit")

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip

# KEYS[1]: the window's counter (ignored when ARGV[1] is '0': no limit);
# KEYS[2..]: keys the caller wants read in the same round trip.
_COUNT_AND_READ = """
local out = {0}
if ARGV[1] ~= '0' then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
  end
  out[1] = count
end
for i = 2, #KEYS do
  out[i] = redis.call('GET', KEYS[i])
end
return out
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}s"


@dataclass(frozen=True)
class RateLimitResult:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


MAX_LIMIT = 1_000_000_000
MAX_WINDOW = 366 * 86400


class InvalidRate(ValueError):
    pass


@functools.lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate:
    """'600/m', '100/10s', '5000/hour' -> Rate. Raises InvalidRate."""
    match = _RATE_RE.match(text.lower())
    if not match or match.group(3) not in _UNIT_SECONDS:
        raise InvalidRate(f"'{text}' is not a rate such as '600/m', '100/10s' or '5000/hour'.")
    limit = int(match.group(1))
    multiplier = int(match.group(2)) if match.group(2) else 1
    window = multiplier * _UNIT_SECONDS[match.group(3)]
    if limit < 1 or window < 1:
        raise InvalidRate(f"'{text}' must allow at least one request in a window of at least 1s.")
    # Beyond these a rate means nothing more, and a window past Redis's expiry range would
    # make every count fail (the gateway would then fail open).
    if limit > MAX_LIMIT or window > MAX_WINDOW:
        raise InvalidRate(
            f"'{text}' must allow at most {MAX_LIMIT} requests in a window of at most 366 days."
        )
    return Rate(limit=limit, window=window)


def rate_for(tenant_settings: dict[str, Any] | None) -> Rate | None:
    """The tenant's own rate if it sets one, else the global API_RATE_LIMIT; None = unlimited."""
    text = (tenant_settings or {}).get("rate_limit") or settings.API_RATE_LIMIT
    if not text:
        return None
    try:
        return parse_rate(str(text))
    except InvalidRate:
        # Settings are validated on write; a bad value that got in anyway must
        # not take the tenant's API down, so fall back to the global rate.
        logger.warning("invalid_tenant_rate_limit", value=text)
        return parse_rate(settings.API_RATE_LIMIT) if settings.API_RATE_LIMIT else None


_script_sha = hashlib.sha1(_COUNT_AND_READ.encode()).hexdigest()  # noqa: S324  (Redis names scripts by SHA-1)


def _run(keys: Sequence[str], expiry: int) -> list[Any]:
    """One round trip, once more if the connection was lost or would not come up (the client
    makes no retries of its own); the script is loaded on the first NOSCRIPT (a new or
    flushed server)."""
    client = get_redis_connection("default")
    try:
        return _evalsha(client, keys, expiry)
    except (RedisConnectionError, RedisTimeoutError):
        return _evalsha(client, keys, expiry)


def _evalsha(client: Any, keys: Sequence[str], expiry: int) -> list[Any]:
    try:
        return list(client.evalsha(_script_sha, len(keys), *keys, expiry))
    except NoScriptError:
        client.script_load(_COUNT_AND_READ)
        return list(client.evalsha(_script_sha, len(keys), *keys, expiry))


@dataclass(frozen=True)
class RoundTrip:
    result: RateLimitResult | None  # None: no limit applies
    values: list[bytes | None]  # the values of the keys asked for, in order


def window_key(*, scope: str, client: str, rate: Rate, now: float) -> str:
    """The counter of `client` in `scope` for the fixed window of `rate` that holds `now`."""
    index = int(now // rate.window)
    return f"{settings.RATE_LIMIT_KEY_PREFIX}:{scope}:{client}:{rate.window}:{index}"


def window_reset(rate: Rate, now: float) -> int:
    """Whole seconds (at least 1) until the window of `rate` that holds `now` ends."""
    return max(1, int((int(now // rate.window) + 1) * rate.window - now + 0.999))


def hit(
    *,
    scope: str,
    client: str,
    rate: Rate | None,
    read_keys: Sequence[str] = (),
    now: float | None = None,
) -> RoundTrip | None:
    """Count one request of `client` in `scope` and read `read_keys`, in one round trip.

    None when Redis is unavailable: the limit fails open, and callers that
    asked for keys fall back to their source of truth.
    """
    now = time.time() if now is None else now
    if rate is None and not read_keys:
        return RoundTrip(result=None, values=[])
    # With no limit the script counts nothing (expiry 0) and only reads: the counter's
    # name is then a placeholder of a 1 s window.
    counter = window_key(scope=scope, client=client, rate=rate or _UNCOUNTED, now=now)
    try:
        reply = _run([counter, *read_keys], rate.window + 1 if rate else 0)
    except RedisError as exc:
        logger.warning("rate_limit_unavailable", error=type(exc).__name__)
        return None
    values: list[bytes | None] = list(reply[1:])
    if rate is None:
        return RoundTrip(result=None, values=values)
    count = int(reply[0])
    result = RateLimitResult(
        limit=rate.limit,
        remaining=max(0, rate.limit - count),
        reset=window_reset(rate, now),
        allowed=count <= rate.limit,
    )
    return RoundTrip(result=result, values=values)


_UNCOUNTED = Rate(limit=1, window=1)
