"""Brute-force limits on sign-in, refresh and password reset (in Redis).

Counted per client address and per account, in the tenant's namespace.
When Redis cannot be reached these endpoints fail closed: 503 with
Retry-After, because without the counters nothing would stop a guessing run.

Sign-in (`login_check`, `login_failed`) counts every attempt against the
address and reads the account's failures in one round trip (the project's
Lua counter, apps/core/ratelimit.py); a failure then counts against the
account. Refresh and password reset use django-ratelimit (two round trips
per limit, on paths where that does not matter).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from apps.core import ratelimit
from apps.core.errors import RateLimitedError, ServiceUnavailableError
from apps.core.net import client_ip
from apps.core.tenancy import current_schema

logger = structlog.get_logger("apps.accounts.limits")

UNAVAILABLE = "Signing in is unavailable for a moment; please retry shortly."


def _usage(request: HttpRequest, rate_name: str, value: str, *, increment: bool) -> dict[str, Any]:
    try:
        usage = get_usage(
            request,
            group=f"auth:{rate_name}",
            key=lambda group, req: value,
            rate=settings.AUTH_RATE_LIMITS[rate_name],
            increment=increment,
        )
    except RedisError as exc:
        logger.error("auth_rate_limit_unavailable", limit=rate_name, error=type(exc).__name__)
        raise ServiceUnavailableError(UNAVAILABLE) from None
    if usage is None:  # RATELIMIT_ENABLE = False
        return {"should_limit": False, "time_left": 0, "count": 0, "limit": 0}
    if usage["time_left"] < 0:  # the counter could not be read or written
        raise ServiceUnavailableError(UNAVAILABLE)
    return dict(usage)


def count_and_check(request: HttpRequest, rate_name: str, value: str) -> None:
    """Count this attempt; 429 once the limit is passed."""
    usage = _usage(request, rate_name, value, increment=True)
    if usage["should_limit"]:
        raise RateLimitedError(
            "Too many attempts; try again later.", retry_after=max(1, usage["time_left"])
        )


def ip_of(request: HttpRequest) -> str:
    return client_ip(request)


# ------------------------------------------------------------------ sign-in, one round trip


def _login_rates() -> tuple[ratelimit.Rate, ratelimit.Rate]:
    limits = settings.AUTH_RATE_LIMITS
    return ratelimit.parse_rate(limits["login_ip"]), ratelimit.parse_rate(limits["login_account"])


def _login_key(rate_name: str, value: str, rate: ratelimit.Rate, now: float) -> str:
    # Hashed: no addresses or e-mail addresses in key names.
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    scope = f"auth:{current_schema()}"
    return ratelimit.window_key(scope=scope, client=f"{rate_name}:{digest}", rate=rate, now=now)


def _unavailable(rate_name: str, exc: RedisError) -> ServiceUnavailableError:
    logger.error("auth_rate_limit_unavailable", limit=rate_name, error=type(exc).__name__)
    return ServiceUnavailableError(UNAVAILABLE)


def login_check(request: HttpRequest, account: str) -> None:
    """Count this sign-in attempt against the client address and 429 once its limit is passed,
    or once `account` has used up its failures; one Redis round trip."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    ip_rate, account_rate = _login_rates()
    now = time.time()
    counter = _login_key("login_ip", ip_of(request), ip_rate, now)
    failures_key = _login_key("login_account", account, account_rate, now)
    try:
        attempts, (failures,) = ratelimit.count_and_read(
            counter=counter, expiry=ip_rate.window + 1, read_keys=[failures_key]
        )
    except RedisError as exc:
        raise _unavailable("login_ip", exc) from None
    if attempts > ip_rate.limit:
        raise RateLimitedError(
            "Too many attempts; try again later.",
            retry_after=ratelimit.window_reset(ip_rate, now),
        )
    if int(failures or 0) >= account_rate.limit:
        raise RateLimitedError(
            "Too many attempts; try again later.",
            retry_after=ratelimit.window_reset(account_rate, now),
        )


def login_failed(request: HttpRequest, account: str) -> None:
    """Count a failed sign-in against `account` (from any address)."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    _, account_rate = _login_rates()
    now = time.time()
    try:
        ratelimit.count_and_read(
            counter=_login_key("login_account", account, account_rate, now),
            expiry=account_rate.window + 1,
        )
    except RedisError as exc:
        raise _unavailable("login_account", exc) from None
