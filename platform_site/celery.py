"""The Celery app: tenant-aware (tenant-schemas-celery), configured from Django settings.

Every task message carries the schema it was sent from and runs in it. Tasks
that belong to a tenant use `apps.jobs.bases.tenant_task`, which refuses to be
sent or run without one. Reliability settings (acks late, reject on worker
loss, prefetch 1, time limits, JSON only) are in the settings; the retry policy
and what happens after the last try are in apps/jobs/retries.py, the task
signals in apps/jobs/signals.py.
"""

from __future__ import annotations

import os
from typing import Any

from celery.signals import beat_init, setup_logging, worker_init, worker_process_init
from tenant_schemas_celery.app import CeleryApp

from apps.core.metrics.celery import worker_metrics_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.local")

app = CeleryApp("platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Event consumers' tasks live beside their receivers (apps/<app>/consumers.py).
app.autodiscover_tasks(related_name="consumers")
# A worker's metrics: its own multiprocess directory, and its port (METRICS_WORKER_PORT).
worker_metrics_connect()


@setup_logging.connect
def _log_as_django_does(**kwargs: Any) -> None:
    """The worker and beat log through settings.LOGGING, as the web does: one JSON (or
    console) line per record, tracebacks without local variables, secrets redacted.
    Connecting here is Celery's switch for leaving logging alone: otherwise it gives the
    task loggers (`celery.task.*`) a plain stderr handler of their own that does not
    propagate to ours, and redirects stdout through its own."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Tracing (apps/core/tracing.py): Celery sets Django up in the worker's main process,
# which only forks; each pool process starts the SDK of its own. With another pool
# (solo, threads) the main process runs the tasks and starts it; beat starts its own.
# Nothing happens with tracing off.
@worker_process_init.connect
def _tracing_start_in_pool_process(**kwargs: Any) -> None:
    from apps.core.tracing import tracing_start_in_child

    tracing_start_in_child()


@worker_init.connect
def _tracing_start_without_prefork(sender: Any = None, **kwargs: Any) -> None:
    if "prefork" not in str(getattr(sender, "pool_cls", "prefork")):
        from apps.core.tracing import tracing_start_in_child

        tracing_start_in_child()


@beat_init.connect
def _tracing_start_in_beat(**kwargs: Any) -> None:
    from apps.core.tracing import tracing_start_in_child

    tracing_start_in_child()
