"""Liveness and readiness probes, outside the envelope and without authentication.

Readiness also says whether a Celery worker consumes the default queue. The web serves
without one (mail and jobs wait in the queue), so by default a missing worker is reported
(`worker: unavailable`) without failing readiness; READINESS_REQUIRE_WORKER makes it fail.
The answer is kept READINESS_WORKER_CACHE_SECONDS in the process, so load balancers'
probes do not each broadcast to the workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection
from kombu import Connection


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    get_redis_connection("default").ping()


def _check_broker() -> None:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


_worker_lock = threading.Lock()
_worker_answer: tuple[float, dict[str, object]] | None = None


def _worker_ask() -> dict[str, object]:
    """Which workers consume the default queue, from their answers to a broadcast (a live
    worker answers within the timeout; a worker on other queues only does not count)."""
    from celery import current_app

    queue = current_app.conf.task_default_queue
    try:
        inspector = current_app.control.inspect(timeout=settings.READINESS_WORKER_TIMEOUT)
        replies: dict[str, Any] = inspector.active_queues() or {}
    except Exception as exc:  # noqa: BLE001  (no answer, whatever the reason, is "unavailable")
        return {"status": "unavailable", "queue": queue, "error": type(exc).__name__}
    consuming = sorted(
        name
        for name, queues in replies.items()
        if any(isinstance(q, dict) and q.get("name") == queue for q in queues or [])
    )
    if not consuming:
        return {"status": "unavailable", "queue": queue, "workers": 0}
    return {"status": "ok", "queue": queue, "workers": len(consuming)}


def worker_status() -> dict[str, object]:
    """The last answer about the workers if it is recent enough, else a new one. One probe
    asks at a time; the others wait for its answer (at most the timeout)."""
    global _worker_answer
    with _worker_lock:
        now = time.monotonic()
        if _worker_answer is not None and now - _worker_answer[0] < float(
            settings.READINESS_WORKER_CACHE_SECONDS
        ):
            return dict(_worker_answer[1])
        answer = _worker_ask()
        _worker_answer = (time.monotonic(), answer)
        return dict(answer)


def worker_status_forget() -> None:
    global _worker_answer
    with _worker_lock:
        _worker_answer = None


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001  (any failure means "not ready"; the name tells which)
            failing.append(name)
            checks[name] = {"status": "error", "error": type(exc).__name__}
        else:
            checks[name] = {"status": "ok"}
        checks[name]["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    started = time.perf_counter()
    if "broker" in failing:
        # No broker, no broadcast: asking would only wait for the connection to time out.
        checks["worker"] = {"status": "unavailable", "error": "broker unreachable"}
    else:
        checks["worker"] = worker_status()
    checks["worker"]["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if checks["worker"]["status"] != "ok" and settings.READINESS_REQUIRE_WORKER:
        failing.append("worker")
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
