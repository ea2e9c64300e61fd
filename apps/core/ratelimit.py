"""The gateway rate limit: a fixed window per client, counted atomically in Redis.

One round trip per request: a Lua script increments the window's counter and
sets its expiry in the same atomic step (the seed's INCR-then-EXPIRE in two
calls leaves a counter without expiry when the second call is lost).

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
from redis.exceptions import NoScriptError, RedisError

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
    """One round trip; the script is loaded on the first NOSCRIPT (new or flushed server)."""
    client = get_redis_connection("default")
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


class PendingScript:
    """The counting script, sent to Redis on a connection of the pool, its reply not read yet.

    `result()` reads the reply once (later calls answer the same, or raise the same error)
    and gives the connection back to the pool. A send that failed, a NOSCRIPT reply (a new
    or flushed server) or a connection lost before the reply go once more through the
    client, with its retries, as any other command would."""

    def __init__(self, keys: list[str], expiry: int) -> None:
        self._keys = keys
        self._expiry = expiry
        self._done = False
        self._reply: list[Any] = []
        self._error: RedisError | None = None
        self._pool: Any = None
        self._connection: Any = None
        try:
            pool = get_redis_connection("default").connection_pool
            connection = pool.get_connection()
        except RedisError:
            return  # result() retries through the client
        try:
            connection.send_command("EVALSHA", _script_sha, len(keys), *keys, expiry)
        except RedisError:
            pool.release(connection)
            return
        except BaseException:
            pool.release(connection)
            raise
        self._pool, self._connection = pool, connection

    def result(self) -> list[Any]:
        if not self._done:
            self._done = True
            try:
                self._reply = self._read()
            except RedisError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._reply

    def _release(self, *, reusable: bool) -> None:
        """Back to the pool; `reusable` once the reply has left the wire (else disconnected:
        a reply may still be on its way)."""
        connection, self._connection = self._connection, None
        if not reusable:
            connection.disconnect()
        self._pool.release(connection)

    def _read(self) -> list[Any]:
        if self._connection is not None:
            try:
                reply = list(self._connection.read_response())
            except NoScriptError:
                self._release(reusable=True)  # an error reply, read: the connection is clean
            except RedisError:
                self._release(reusable=False)  # redis-py has closed the connection
            except BaseException:
                self._release(reusable=False)
                raise
            else:
                self._release(reusable=True)
                return reply
        return _run(self._keys, self._expiry)


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
    return hit_start(scope=scope, client=client, rate=rate, read_keys=read_keys, now=now).finish()


def hit_start(
    *,
    scope: str,
    client: str,
    rate: Rate | None,
    read_keys: Sequence[str] = (),
    now: float | None = None,
) -> PendingHit:
    """`hit`, sent now and read later: the script goes out at once, and `finish()` reads its
    reply. Work done in between (the gateway does the rest of the middleware and the URL
    resolution) overlaps the round trip, so the reply has usually arrived when it is read and
    the worker does not sit waiting for Redis."""
    now = time.time() if now is None else now
    if rate is None and not read_keys:
        return PendingHit(rate=None, now=now, script=None)
    # With no limit the script counts nothing (expiry 0) and only reads: the counter's
    # name is then a placeholder of a 1 s window.
    counter = window_key(scope=scope, client=client, rate=rate or _UNCOUNTED, now=now)
    script = PendingScript([counter, *read_keys], rate.window + 1 if rate else 0)
    return PendingHit(rate=rate, now=now, script=script)


_UNCOUNTED = Rate(limit=1, window=1)


class PendingHit:
    """A gateway round trip in flight. `finish()` reads the reply once (later calls answer
    the same); None when Redis could not be reached (the limit fails open)."""

    def __init__(self, *, rate: Rate | None, now: float, script: PendingScript | None) -> None:
        self._rate = rate
        self._now = now
        self._script = script
        self._done = False
        self._trip: RoundTrip | None = None

    @property
    def finished(self) -> bool:
        return self._done

    def finish(self) -> RoundTrip | None:
        if not self._done:
            self._done = True
            self._trip = self._read()
        return self._trip

    def _read(self) -> RoundTrip | None:
        if self._script is None:
            return RoundTrip(result=None, values=[])
        try:
            reply = self._script.result()
        except RedisError as exc:
            logger.warning("rate_limit_unavailable", error=type(exc).__name__)
            return None
        values: list[bytes | None] = list(reply[1:])
        rate = self._rate
        if rate is None:
            return RoundTrip(result=None, values=values)
        count = int(reply[0])
        result = RateLimitResult(
            limit=rate.limit,
            remaining=max(0, rate.limit - count),
            reset=window_reset(rate, self._now),
            allowed=count <= rate.limit,
        )
        return RoundTrip(result=result, values=values)
