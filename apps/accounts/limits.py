"""Brute-force limits on sign-in, refresh and password reset (django-ratelimit, in Redis).

Counted per client address and per account, in the tenant's cache namespace.
When Redis cannot be reached these endpoints fail closed: 503 with
Retry-After, because without the counters nothing would stop a guessing run.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from apps.core.errors import RateLimitedError, ServiceUnavailableError
from apps.core.net import client_ip

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


def check(request: HttpRequest, rate_name: str, value: str) -> None:
    """429 if the limit is already used up (without counting this attempt)."""
    usage = _usage(request, rate_name, value, increment=False)
    if usage.get("count", 0) >= usage.get("limit", 1) and usage.get("limit", 0) > 0:
        raise RateLimitedError(
            "Too many attempts; try again later.", retry_after=max(1, usage["time_left"])
        )


def count(request: HttpRequest, rate_name: str, value: str) -> None:
    """Count a failed attempt against `value` (the account)."""
    _usage(request, rate_name, value, increment=True)


def ip_of(request: HttpRequest) -> str:
    return client_ip(request)
