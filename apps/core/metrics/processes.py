"""The multiprocess directory: where the processes of one server keep their values.

gunicorn's master (gunicorn.conf.py, `on_starting`) and a Celery worker's main process
(`apps.core.metrics.celery`) call `multiprocess_directory_prepare()` before their child
processes start and before anything imports prometheus_client, which picks its mode from
PROMETHEUS_MULTIPROC_DIR when imported. The directory starts empty: a value file left by
an earlier run would be added to this run's.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: str | None = None  # the temporary directory this process made, removed at exit


def multiprocess_directory_prepare() -> str:
    """PROMETHEUS_MULTIPROC_DIR emptied of value files, or else a new temporary directory
    (then set in the environment, for the children). Its path."""
    global _created
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for entry in path.glob("*.db"):
            entry.unlink(missing_ok=True)
        return given
    _created = tempfile.mkdtemp(prefix="platform-metrics-")
    os.environ[ENV] = _created
    return _created


def imported_too_early() -> bool:
    """prometheus_client was imported before the directory was set: this process keeps its
    values in memory, and its children would too."""
    if "prometheus_client.values" not in sys.modules:
        return False
    from prometheus_client import values

    return values.ValueClass is values.MutexValue


def metrics_preload() -> None:
    """After the directory is set, in the parent of the processes that count: import
    prometheus_client and the metrics once, so the children share those pages instead of
    each importing its own copy. Only where the settings are loaded already (gunicorn with
    preload_app, a Celery worker)."""
    from django.conf import settings

    if settings.configured and settings.METRICS_ENABLED:
        from apps.core.metrics import definitions  # noqa: F401


def multiprocess_directory_remove() -> None:
    """At the server's exit: the temporary directory it made, if it made one."""
    global _created
    if _created is not None:
        shutil.rmtree(_created, ignore_errors=True)
        _created = None


def process_dead(pid: int) -> None:
    """A child process exited: its live gauges go (its counters and histograms stay)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
