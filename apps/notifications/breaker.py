"""A circuit breaker per provider, its state in Redis so every worker process shares it.

After NOTIFICATION_BREAKER_FAIL_MAX consecutive failures (transient errors, or
anything unexpected) a provider's breaker opens: no worker calls the provider
until NOTIFICATION_BREAKER_RESET_SECONDS have passed, then one trial call is
let through (half-open) and its outcome closes or re-opens the breaker.
Permanent errors (a refused number) say the provider is up: they do not count.
Keys are per provider, not per tenant: a provider down is down for everyone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker
from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.notifications.channels.base import PermanentProviderError

T = TypeVar("T")


class BreakerOpen(Exception):
    def __init__(self, provider: str, retry_at: datetime) -> None:
        super().__init__(f"the {provider} circuit breaker is open until {retry_at.isoformat()}")
        self.provider = provider
        self.retry_at = retry_at


def breaker_namespace(provider: str) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:notifications:breaker:{provider}"


def provider_breaker(provider: str) -> pybreaker.CircuitBreaker:
    return _breaker(
        provider,
        settings.NOTIFICATION_BREAKER_FAIL_MAX,
        settings.NOTIFICATION_BREAKER_RESET_SECONDS,
    )


# How long this process trusts a read that found a breaker closed with no failures.
CLOSED_FRESH_SECONDS = 1.0


class _RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, at one round trip per call while all is well.

    The stock storage reads the state (GET) before every call and zeroes the
    failure counter (SET) after every success. Here the state and the counter
    are read together (MGET), and a success zeroes the counter only when that
    read found failures. A read that found the breaker closed with no failures
    stands for CLOSED_FRESH_SECONDS in this process (a chunk's messages cost no
    round trip each); any failure here ends it at once, and a breaker another
    process opened is seen here within that time. (Between processes,
    "consecutive" failures were never exact: a success elsewhere may or may
    not land between two failures.)
    """

    _counter_seen: int | None = None
    _closed_until: float = 0.0

    @property
    def state(self) -> str:
        if self._counter_seen == 0 and time.monotonic() < self._closed_until:
            return pybreaker.STATE_CLOSED
        self._closed_until = 0.0
        try:
            state, counter = self._redis.mget(
                self._namespace("state"), self._namespace("fail_counter")
            )
        except RedisError:
            self._counter_seen = None
            self.logger.exception("RedisError: falling back to default circuit state")
            return str(self._fallback_circuit_state)
        try:
            self._counter_seen = int(counter or 0)
        except ValueError:
            self._counter_seen = None
        if state is None:
            self._initialize_redis_state(self._fallback_circuit_state)
            return str(self._fallback_circuit_state)
        text = state.decode("utf-8") if isinstance(state, bytes) else str(state)
        if text == pybreaker.STATE_CLOSED and self._counter_seen == 0:
            self._closed_until = time.monotonic() + CLOSED_FRESH_SECONDS
        return text

    @state.setter
    def state(self, state: str) -> None:
        self._counter_seen, self._closed_until = None, 0.0
        pybreaker.CircuitRedisStorage.state.fset(self, state)  # type: ignore[attr-defined]

    def increment_counter(self) -> None:
        self._counter_seen, self._closed_until = None, 0.0
        super().increment_counter()

    def reset_counter(self) -> None:
        if self._counter_seen == 0:
            return  # nothing to zero: the read before this call found no failures
        self._counter_seen = 0
        super().reset_counter()

    # The stock storage keeps opened_at in whole seconds, so a breaker opened at
    # 12:00:00.990 could let its trial call through at 12:00:01.000 with a 1 s
    # reset timeout: up to a second early. Here it keeps the fraction too (an
    # older whole-second value still reads), set only if later, as the stock one.
    @property
    def opened_at(self) -> datetime | None:
        try:
            value = self._redis.get(self._namespace("opened_at"))
        except RedisError:
            self.logger.exception("RedisError")
            return None
        if not value:
            return None
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (ValueError, OverflowError):
            return None

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        try:
            self._redis.eval(_SET_IF_LATER, 1, self._namespace("opened_at"), repr(now.timestamp()))
        except RedisError:
            self.logger.exception("RedisError")


_SET_IF_LATER = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
end
"""


@functools.cache
def _breaker(provider: str, fail_max: int, reset_seconds: int) -> pybreaker.CircuitBreaker:
    storage = _RedisStorage(
        pybreaker.STATE_CLOSED,
        get_redis_connection("default"),
        namespace=breaker_namespace(provider),
    )
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_seconds,
        exclude=[PermanentProviderError],
        state_storage=storage,
        name=provider,
        # The failure that trips the breaker is still that call's own error (an attempt).
        throw_new_error_on_trip=False,
    )


def breaker_retry_at(provider: str) -> datetime:
    """When an open breaker lets a trial call through."""
    breaker = provider_breaker(provider)
    opened_at = breaker._state_storage.opened_at or timezone.now()
    return opened_at + timedelta(seconds=breaker.reset_timeout)


def breaker_call(provider: str, func: Callable[[], T]) -> T:
    """Call `func` through the provider's breaker; raises BreakerOpen without calling it
    while the breaker is open."""
    breaker = provider_breaker(provider)
    try:
        return breaker.call(func)
    except pybreaker.CircuitBreakerError as exc:
        raise BreakerOpen(provider, breaker_retry_at(provider)) from exc


def breaker_state(provider: str) -> str:
    """ "closed", "open" or "half-open", as stored in Redis."""
    return str(provider_breaker(provider).current_state)


def breaker_states_by_channel() -> dict[str, str]:
    """The state of the breaker in front of each channel's provider (metrics, at scrape time)."""
    from apps.notifications.channels.registry import SETTING_PER_CHANNEL, provider_for

    states: dict[str, str] = {}
    for channel in SETTING_PER_CHANNEL:
        try:
            states[channel] = breaker_state(provider_for(channel).name)
        except Exception:  # noqa: BLE001, S112  (a provider that cannot load: no sample, not none at all)
            continue
    return states


def breaker_reset(provider: str) -> None:
    """Forget the provider's state (closed, no failures): for operators and tests."""
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"{breaker_namespace(provider)}:*"))
    if keys:
        redis.delete(*keys)
    _breaker.cache_clear()
