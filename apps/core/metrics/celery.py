"""Celery's side of the metrics: task runs and durations, and a worker's own /metrics port.

A worker keeps its values in a multiprocess directory of its own (PROMETHEUS_MULTIPROC_DIR
if set, wiped at start; else a new temporary one), so the pool processes that run the
tasks write where the worker's main process reads. With METRICS_WORKER_PORT set, the main
process serves them at http://METRICS_WORKER_ADDRESS:METRICS_WORKER_PORT/metrics under the
same access rule as the web's /metrics. (Not the web's directory: web and workers run in
different containers or hosts, and a web restart wiping its directory would lose the
workers' open files.)

`worker_metrics_connect()` is called from platform_site/celery.py, before any worker
starts; the task signals are connected by CoreConfig.ready when METRICS_ENABLED.
"""

from __future__ import annotations

import sys
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from celery.exceptions import WorkerLostError
from celery.signals import (
    celeryd_init,
    task_failure,
    task_postrun,
    task_prerun,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings

from apps.core.metrics.processes import (
    imported_too_early,
    metrics_preload,
    multiprocess_directory_prepare,
    multiprocess_directory_remove,
)

logger = structlog.get_logger("apps.core.metrics")

# task id -> perf_counter at its start, in the process that runs it.
_started: dict[str, float] = {}


def _task_started(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _task_ended(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    from apps.core.metrics.definitions import CELERY_TASK_DURATION, CELERY_TASK_RUNS

    started = _started.pop(task_id, None) if task_id else None
    name = str(getattr(task, "name", None) or "unknown")
    CELERY_TASK_RUNS.labels(task=name, outcome=(state or "unknown").lower()).inc()
    if started is not None:
        CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


def _task_failed(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **kwargs: Any
) -> None:
    """Only a failure raised outside the process that ran the task (the hard time limit, a
    lost pool process): that run has no postrun. Others are counted by `_task_ended`."""
    if task_id and task_id in _started:
        return
    from apps.core.metrics.definitions import CELERY_TASK_RUNS

    outcome = "worker_lost" if isinstance(exception, WorkerLostError) else "failure"
    CELERY_TASK_RUNS.labels(
        task=str(getattr(sender, "name", None) or "unknown"), outcome=outcome
    ).inc()


def task_metrics_connect() -> None:
    task_prerun.connect(_task_started, dispatch_uid="metrics_task_started", weak=False)
    task_postrun.connect(_task_ended, dispatch_uid="metrics_task_ended", weak=False)
    task_failure.connect(_task_failed, dispatch_uid="metrics_task_failed", weak=False)


# ------------------------------------------------------------------ the worker's directory and port


def _directory_prepare(**kwargs: Any) -> None:
    """celeryd_init is Celery's first signal in a worker, before it imports the apps."""
    multiprocess_directory_prepare()
    metrics_preload()
    if imported_too_early():
        sys.stderr.write("metrics: prometheus_client was imported before the worker's directory\n")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def metrics_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The worker's /metrics, as a WSGI application: the access rule of the web's, the
    values of the worker's processes (no scrape-time gauges: the web serves those)."""
    from apps.core.metrics.access import metrics_access
    from apps.core.metrics.exposition import CONTENT_TYPE, exposition

    if environ.get("PATH_INFO") != settings.METRICS_PATH:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    verdict = metrics_access(
        address=str(environ.get("REMOTE_ADDR", "")),
        authorization=str(environ.get("HTTP_AUTHORIZATION", "")),
        proxied=bool(environ.get("HTTP_X_FORWARDED_FOR") or environ.get("HTTP_FORWARDED")),
    )
    if verdict.status == 401:
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [f"{verdict.reason}\n".encode()]
    if verdict.status != 200:
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [f"{verdict.reason}\n".encode()]
    body = exposition(scrape_time=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]


def _serve(**kwargs: Any) -> None:
    port = int(settings.METRICS_WORKER_PORT)
    if not settings.METRICS_ENABLED or not port:
        return
    try:
        server = make_server(
            settings.METRICS_WORKER_ADDRESS, port, metrics_app, server_class=_Server,
            handler_class=_QuietHandler,
        )  # fmt: skip
    except OSError as exc:
        # The worker runs on without its metrics rather than not at all.
        logger.error("metrics_port_unavailable", port=port, error=str(exc))
        return
    logger.info("metrics_serving", address=settings.METRICS_WORKER_ADDRESS, port=port)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


def _directory_remove(**kwargs: Any) -> None:
    multiprocess_directory_remove()


def worker_metrics_connect() -> None:
    celeryd_init.connect(_directory_prepare, dispatch_uid="metrics_directory", weak=False)
    worker_ready.connect(_serve, dispatch_uid="metrics_serve", weak=False)
    worker_shutdown.connect(_directory_remove, dispatch_uid="metrics_directory_remove", weak=False)
