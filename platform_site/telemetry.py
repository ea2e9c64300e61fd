"""gunicorn's hook for tracing (gunicorn.conf.py imports `post_fork` from here).

gunicorn preloads the app in its master and forks the workers from it. The
OpenTelemetry SDK (its export thread, the exporter's connections) must not be
started in the master, whose threads a fork does not copy: importing this module
tells apps/core/tracing.py to leave it to the workers, and each worker starts its
own right after the fork. With tracing off (no OTEL_* variables) both do nothing.
"""

from __future__ import annotations

from apps.core.tracing import tracing_defer_start, tracing_start_in_child

# gunicorn reads its config file (and so imports this) in the master, before the app.
tracing_defer_start()


def post_fork(server: object, worker: object) -> None:
    tracing_start_in_child()
