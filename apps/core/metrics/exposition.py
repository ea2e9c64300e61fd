"""The text Prometheus reads: every process's values, plus what is read at scrape time."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from apps.core.metrics import definitions  # noqa: F401  (the families exist before any event)
from apps.core.metrics.collectors import ScrapeCollector

# The text format generate_latest writes (what prometheus_client serves by default too).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def multiprocess_dir() -> str | None:
    """The directory this process keeps its values in (set before prometheus_client was
    imported: gunicorn.conf.py for the web, `apps.core.metrics.celery` for a worker)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(*, scrape_time: bool) -> bytes:
    """The values of every process writing to the multiprocess directory (summed; a dead
    process's counts stay), or this process's own when there is none; with `scrape_time`,
    the gauges read now (queue depth, outbox lag, breaker states)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if scrape_time:
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(ScrapeCollector())
        text += generate_latest(scraped)
    return text
