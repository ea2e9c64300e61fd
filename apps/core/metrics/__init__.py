"""Prometheus metrics: what the platform counts, and the one-line calls that count it.

Other apps call these functions where the event happens (a refused request, a sign-in, a
delivery's outcome); the metric objects live in `definitions` and are built on first use,
so a process with METRICS_ENABLED off never imports prometheus_client and each call is a
settings lookup. The request metrics are `middleware`'s, the task metrics `celery`'s, what
is read at scrape time (queue depth, outbox lag, breakers) `collectors`'; `/metrics` itself
is `views`. See "Metrics" in docs/observability.md.
"""

from __future__ import annotations

from django.conf import settings


def metrics_enabled() -> bool:
    return bool(settings.METRICS_ENABLED)


def ratelimit_refused(scope: str) -> None:
    """A request refused by a rate limit: `api` (the gateway's), or the brute-force limit's name."""
    if metrics_enabled():
        from apps.core.metrics.definitions import RATELIMIT_REFUSALS

        RATELIMIT_REFUSALS.labels(scope=scope).inc()


def signin_attempted() -> None:
    """A sign-in let through the brute-force limits, before its password is checked."""
    if metrics_enabled():
        from apps.core.metrics.definitions import SIGNIN_ATTEMPTS

        SIGNIN_ATTEMPTS.inc()


def signin_succeeded() -> None:
    if metrics_enabled():
        from apps.core.metrics.definitions import SIGNIN_SUCCESSES

        SIGNIN_SUCCESSES.inc()


def signin_locked_out() -> None:
    """A sign-in refused because its account is locked (too many failures)."""
    if metrics_enabled():
        from apps.core.metrics.definitions import SIGNIN_LOCKOUTS

        SIGNIN_LOCKOUTS.inc()


def delivery_recorded(channel: str, status: str) -> None:
    """A provider call's outcome for one delivery: sent, failed, skipped, or pending (to be
    retried, or held back by an open breaker)."""
    if metrics_enabled():
        from apps.core.metrics.definitions import NOTIFICATION_DELIVERIES

        NOTIFICATION_DELIVERIES.labels(channel=channel, status=status).inc()
