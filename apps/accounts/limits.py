"""Brute-force limits on sign-in, refresh, password reset and single sign-on (in Redis).

The one place these limits are counted (the API-wide limit is the gateway's own
counter, apps/core/ratelimit.py). Two ways, one per purpose: `login_check` /
`login_succeeded` for sign-in (the address's log and the account's failures, in
one round trip), `count_and_check` for everything else (one sliding log).

Counted per client address and per account, in the tenant's namespace, with
`settings.AUTH_RATE_LIMITS` (off with `settings.AUTH_RATE_LIMITS_ENABLED`). When Redis cannot be reached these endpoints fail
closed: 503 with Retry-After, because without the counters nothing would stop a
guessing run.

What "N per period" means here, exactly:

- A limit per address (or per account, for refresh and reset) is a sliding log:
  the instants of the attempts it let through in the last period. An attempt is
  let through only while fewer than N are logged, so no span of one period ever
  holds more than N, wherever it starts (a fixed window lets 2N through around
  its edge). A refused attempt is not logged: the limit lifts as the oldest
  logged attempt ages out, which is what Retry-After says.
- The account's sign-in lock counts failures. Each sign-in is counted as a failure
  before its password is checked (so parallel guesses cannot all pass the check
  before any of them is counted) and given back once it succeeds. Once N are
  counted, the account is locked until a full period has passed since the last
  one; the count starts again from zero after a period without a counted failure.
  So an account never sees more than N wrong passwords in any span of one period,
  and a steady guesser gets N per period.

Sign-in costs one round trip before the password is checked (address and account
at once, `login_check`) and, when it succeeds, one more (`login_succeeded`).
Instants come from this process's clock, in milliseconds; Redis expiries only
clear keys that no longer matter.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.core import ratelimit
from apps.core.errors import RateLimitedError, ServiceUnavailableError
from apps.core.net import client_ip
from apps.core.tenancy import current_schema

logger = structlog.get_logger("apps.accounts.limits")

UNAVAILABLE = "Signing in is unavailable for a moment; please retry shortly."
TOO_MANY = "Too many attempts; try again later."

# A sliding log, as a Lua function: KEYS[log_key] holds the instants (ms) of the attempts
# let through in the last `window` ms. Lets this one through and logs it if fewer than
# `limit` are logged; else answers how long until the oldest ages out.
_SLIDING_LOG = """
local function sliding_log(key, now, window, limit, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return tonumber(oldest[2]) + window - now
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 0
end
"""

# KEYS[1]: the log; ARGV: now, window, limit, member. Returns {wait_ms} (0: let through).
_COUNT_AND_CHECK = (
    _SLIDING_LOG
    + """
return {sliding_log(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])}
"""
)

# KEYS[1]: the address's log; KEYS[2]: the account's failures, a hash {n: count, t: instant
# of the last one}. ARGV: now, address window, address limit, member, account window,
# account limit. Returns {verdict, wait_ms}: 0 let through (and counted as a failure in
# advance), 1 the address is over its limit, 2 the account is locked.
_SIGN_IN = (
    _SLIDING_LOG
    + """
local now = tonumber(ARGV[1])
local wait = sliding_log(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
if wait > 0 then
  return {1, wait}
end
local window = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[2], 'n', 't')
local failures = tonumber(state[1]) or 0
local last = tonumber(state[2]) or 0
if now - last >= window then
  failures = 0
end
if failures >= tonumber(ARGV[6]) then
  return {2, last + window - now}
end
redis.call('HSET', KEYS[2], 'n', failures + 1, 't', math.max(now, last))
redis.call('PEXPIRE', KEYS[2], window)
return {0, 0}
"""
)

# KEYS[1]: the account's failures. Gives back the one counted in advance.
_SIGN_IN_SUCCEEDED = """
if (tonumber(redis.call('HGET', KEYS[1], 'n')) or 0) > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return {}
"""


def _run(script: str, keys: list[str], args: list[Any]) -> list[Any]:
    """One round trip (EVALSHA; the script is loaded on a new or flushed server)."""
    client = get_redis_connection("default")
    return list(client.register_script(script)(keys=keys, args=args))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _seconds(wait_ms: int) -> int:
    return max(1, math.ceil(wait_ms / 1000))


@dataclass(frozen=True)
class _Limit:
    key: str
    rate: ratelimit.Rate

    @property
    def window_ms(self) -> int:
        return self.rate.window * 1000


def _limit(rate_name: str, value: str) -> _Limit:
    # Hashed: no addresses or e-mail addresses in key names.
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    key = f"{settings.RATE_LIMIT_KEY_PREFIX}:auth:{current_schema()}:{rate_name}:{digest}"
    return _Limit(key=key, rate=ratelimit.parse_rate(settings.AUTH_RATE_LIMITS[rate_name]))


def _enabled() -> bool:
    return bool(settings.AUTH_RATE_LIMITS_ENABLED)


def _unavailable(rate_name: str, exc: RedisError) -> ServiceUnavailableError:
    logger.error("auth_rate_limit_unavailable", limit=rate_name, error=type(exc).__name__)
    return ServiceUnavailableError(UNAVAILABLE)


def _member() -> str:
    # Two attempts in the same millisecond must be two entries of the log.
    return secrets.token_hex(8)


def ip_of(request: HttpRequest) -> str:
    return client_ip(request)


def count_and_check(request: HttpRequest, rate_name: str, value: str) -> None:
    """Count this attempt against `value`; 429 once `rate_name`'s limit is reached."""
    if not _enabled():
        return
    limit = _limit(rate_name, value)
    try:
        (wait_ms,) = _run(
            _COUNT_AND_CHECK,
            [limit.key],
            [_now_ms(), limit.window_ms, limit.rate.limit, _member()],
        )
    except RedisError as exc:
        raise _unavailable(rate_name, exc) from None
    if int(wait_ms) > 0:
        raise RateLimitedError(TOO_MANY, retry_after=_seconds(int(wait_ms)))


# ------------------------------------------------------------------ sign-in


def login_check(request: HttpRequest, account: str) -> None:
    """Before a password is checked: count the attempt against the client address and, in
    advance, as a failure of `account`; 429 when either is over its limit. One round trip.

    Call `login_succeeded` once the password checked out; whatever else happens (a wrong
    password, an unknown account, an error) the failure stays counted."""
    if not _enabled():
        return
    address = _limit("login_ip", ip_of(request))
    failures = _limit("login_account", account)
    try:
        verdict, wait_ms = _run(
            _SIGN_IN,
            [address.key, failures.key],
            [
                _now_ms(),
                address.window_ms,
                address.rate.limit,
                _member(),
                failures.window_ms,
                failures.rate.limit,
            ],
        )
    except RedisError as exc:
        raise _unavailable("login", exc) from None
    if int(verdict) != 0:
        raise RateLimitedError(TOO_MANY, retry_after=_seconds(int(wait_ms)))


def login_succeeded(request: HttpRequest, account: str) -> None:
    """Give back the failure `login_check` counted in advance. A sign-in that succeeded is
    not refused when this cannot reach Redis: the failure then stays counted (stricter)."""
    if not _enabled():
        return
    try:
        _run(_SIGN_IN_SUCCEEDED, [_limit("login_account", account).key], [])
    except RedisError as exc:
        logger.warning("auth_rate_limit_not_given_back", error=type(exc).__name__)


# ------------------------------------------------------------------ second factor

# KEYS[1]: the log. ARGV[1]: the member to take out again.
_GIVE_BACK = """
redis.call('ZREM', KEYS[1], ARGV[1])
return {}
"""


def mfa_check(request: HttpRequest, account: str) -> str | None:
    """Before a second factor is checked: log the attempt against `account` in its sliding
    log (`AUTH_RATE_LIMITS["mfa"]`), as a failure until `mfa_succeeded` takes it out; 429
    once the log is full. The log is the account's, not the sign-in challenge's: a new
    password sign-in does not reset it. Returns the entry to give back (None when off)."""
    if not _enabled():
        return None
    limit = _limit("mfa", account)
    member = _member()
    try:
        (wait_ms,) = _run(
            _COUNT_AND_CHECK, [limit.key], [_now_ms(), limit.window_ms, limit.rate.limit, member]
        )
    except RedisError as exc:
        raise _unavailable("mfa", exc) from None
    if int(wait_ms) > 0:
        raise RateLimitedError(TOO_MANY, retry_after=_seconds(int(wait_ms)))
    return member


def mfa_succeeded(account: str, member: str | None) -> None:
    """Take the attempt `mfa_check` logged out again: it was right. Not reachable: it stays
    (stricter)."""
    if member is None or not _enabled():
        return
    try:
        _run(_GIVE_BACK, [_limit("mfa", account).key], [member])
    except RedisError as exc:
        logger.warning("auth_rate_limit_not_given_back", error=type(exc).__name__)
