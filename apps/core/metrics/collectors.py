"""Gauges read when Prometheus scrapes (web only): queue depth, outbox lag, breaker states.

Each is one cheap read with a short timeout (METRICS_SCRAPE_TIMEOUT); one that fails or
times out is logged and left out of the answer (no sample), and the others still come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import structlog
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.metrics import sources
from apps.core.tenancy import public_schema, tenant_schema_names

logger = structlog.get_logger("apps.core.metrics")

# 0 closed, 1 half-open, 2 open: a breaker's state as a number a graph and an alert can use.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


def celery_queues() -> list[str]:
    from celery import current_app

    conf = current_app.conf
    names = [str(conf.task_default_queue)]
    names += [str(q.name) for q in (conf.task_queues or []) if q.name not in names]
    return names


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue: one passive declare per queue, on one connection."""
    from celery import current_app
    from kombu.exceptions import ChannelError

    timeout = float(settings.METRICS_SCRAPE_TIMEOUT)
    depths: dict[str, int] = {}
    with current_app.connection_for_read(
        connect_timeout=timeout, transport_options={"socket_timeout": timeout}
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=int(timeout) or 1
        )
        channel: Any = conn.default_channel
        for queue in celery_queues():
            try:
                depths[queue] = int(channel.queue_declare(queue, passive=True).message_count)
            except ChannelError:
                depths[queue] = 0  # Redis: an empty queue is no key at all
    return depths


def outbox_pending() -> tuple[float, int]:
    """(age in seconds of the oldest undispatched outbox event, how many are undispatched),
    over the public schema and every active tenant's, in one statement."""
    table = apps.get_model("jobs", "OutboxEvent")._meta.db_table
    quote = connection.ops.quote_name
    schemas = [public_schema(), *tenant_schema_names(active_only=True)]
    # Schema and table names come from the database and are quoted; nothing from a request.
    per_schema = " UNION ALL ".join(
        f"SELECT min(occurred_at) AS oldest, count(*) AS pending"  # noqa: S608
        f" FROM {quote(schema)}.{quote(table)} WHERE dispatched_at IS NULL"
        for schema in schemas
    )
    statement = (
        "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(oldest)), 0), coalesce(sum(pending), 0)"  # noqa: S608
        f" FROM ({per_schema}) AS per_schema"
    )
    timeout_ms = int(float(settings.METRICS_SCRAPE_TIMEOUT) * 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
        cursor.execute(statement)
        age, pending = cursor.fetchone()
        # Inside an outer transaction (a test's) the setting would outlive this block.
        cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
    return max(float(age), 0.0), int(pending)


class ScrapeCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._guarded("queue_depth", self._queues)
        yield from self._guarded("outbox", self._outbox)
        if sources.breaker_states is not None:
            yield from self._guarded("breakers", self._breakers)

    @staticmethod
    def _guarded(name: str, read: Callable[[], list[Metric]]) -> list[Metric]:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001  (no sample for what could not be read, never a 500)
            logger.warning("metrics_scrape_failed", reading=name, error=type(exc).__name__)
            return []

    @staticmethod
    def _queues() -> list[Metric]:
        gauge = GaugeMetricFamily(
            "celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue, depth in queue_depths().items():
            gauge.add_metric([queue], depth)
        return [gauge]

    @staticmethod
    def _outbox() -> list[Metric]:
        age, pending = outbox_pending()
        return [
            GaugeMetricFamily(
                "outbox_lag_seconds",
                "Age of the oldest domain event not dispatched yet (0: none pending), "
                "over every active tenant.",
                value=age,
            ),
            GaugeMetricFamily(
                "outbox_pending_events", "Domain events not dispatched yet.", value=pending
            ),
        ]

    @staticmethod
    def _breakers() -> list[Metric]:
        read = sources.breaker_states or dict
        gauge = GaugeMetricFamily(
            "notification_breaker_state",
            "The circuit breaker of a channel's provider: 0 closed, 1 half-open, 2 open.",
            labels=["channel"],
        )
        for channel, state in read().items():
            if state in BREAKER_STATES:
                gauge.add_metric([channel], BREAKER_STATES[state])
        return [gauge]
