"""gunicorn settings for the web process (environment variables override the defaults)."""

import os
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# Load the app once in the master and fork workers from it: workers share its
# memory pages, and a restarted worker is ready at once instead of importing
# everything again (about half a second of CPU each time).
preload_app = True
# Still recycle a worker now and then, so a slow leak can never take one down;
# with preloading a recycle is only a fork.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = 5000
# The app logs one structured line per request itself (apps.core.middleware); this
# logger class skips building gunicorn's own, which nothing would write.
accesslog = None
logger_class = "platform_site.gunicorn_logger.GunicornLogger"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn's own lines (start, worker boot and exit, timeouts) in the same JSON shape as the app's.
from apps.core.logging import logging_config  # noqa: E402
from platform_site.telemetry import post_fork  # noqa: E402, F401  (tracing: the SDK per worker)

logconfig_dict = logging_config(
    json=os.environ.get("LOG_FORMAT", "json") != "console", level=loglevel.upper()
)
logconfig_dict["loggers"].update(
    {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
    }
)


def pre_fork(server: object, worker: object) -> None:
    # Move everything the master loaded out of the garbage collector's reach:
    # otherwise a collection in a worker writes to those objects and copies
    # the shared pages into the worker.
    import gc

    gc.freeze()


# Prometheus metrics (apps/core/metrics): the workers keep their values in files of one
# directory that /metrics adds up. Emptied (or made) here, in the master, before any worker
# starts. With preload_app the app is loaded already, but without prometheus_client, which
# picks its mode when imported: it is imported here, once the directory is set.
def on_starting(server: object) -> None:
    from apps.core.metrics.processes import metrics_preload, multiprocess_directory_prepare

    multiprocess_directory_prepare()
    metrics_preload()


def child_exit(server: object, worker: Any) -> None:
    from apps.core.metrics.processes import process_dead

    process_dead(worker.pid)


def on_exit(server: object) -> None:
    from apps.core.metrics.processes import multiprocess_directory_remove

    multiprocess_directory_remove()
