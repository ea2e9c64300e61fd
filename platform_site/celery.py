"""The Celery app: tenant-aware (tenant-schemas-celery), configured from Django settings.

Every task message carries the schema it was sent from and runs in it. Tasks
that belong to a tenant use `apps.core.tasks.tenant_task`, which refuses to be
sent or run without one. Reliability settings (acks late, reject on worker
loss, prefetch 1, time limits, JSON only) are in settings/base.py; the
retry policy and what happens after the last try are in apps/core/jobs.py.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery.signals import setup_logging, task_failure, task_postrun, task_prerun, task_retry
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.local")

app = CeleryApp("platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Event consumers' tasks live beside their receivers (apps/<app>/consumers.py).
app.autodiscover_tasks(related_name="consumers")


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


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    from apps.core.tenancy import current_schema

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=getattr(task, "name", None), tenant=current_schema()
    )


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_requests(task: Any = None, **kwargs: Any) -> None:
    """Treat each task like a request: keep the connection while it is healthy and younger
    than CONN_MAX_AGE, close it when unusable (CONN_HEALTH_CHECKS), rather than Celery's
    default of a new PostgreSQL connection for every task. Celery's own
    closing is held off by CELERY_DB_REUSE_MAX. Eager tasks run inside the caller's
    transaction and are left alone, as Celery does."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@task_postrun.connect
def _clear_task_context(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    from apps.core.jobs import run_flag_release_for

    structlog.contextvars.clear_contextvars()
    if state != "RETRY" and task is not None:
        run_flag_release_for(task.request, task_id)


@task_retry.connect
def _note_retry(request: Any = None, **kwargs: Any) -> None:
    from apps.core.jobs import job_retry_note

    if request is not None and request.id:
        job_retry_note(task_id=request.id)


@task_failure.connect
def _record_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    einfo: Any = None,
    **extra: Any,
) -> None:
    """A task failed for good (a permanent error, or a transient one after its last try)."""
    from celery.exceptions import WorkerLostError

    from apps.core.jobs import job_failure_record, request_header, run_flag_release_for
    from apps.core.tenancy import current_schema

    if exception is None or isinstance(exception, WorkerLostError) or not task_id:
        return  # a lost worker's task is redelivered (reject on worker lost), not failed
    request = getattr(sender, "request", None)
    schema = request_header(request, "_schema_name") or current_schema()
    job_failure_record(
        task_name=getattr(sender, "name", "?"),
        task_id=task_id,
        schema=schema,
        args=args,
        kwargs=kwargs,
        exception=exception,
        traceback=str(getattr(einfo, "traceback", "") or ""),
        attempts=int(getattr(request, "retries", 0) or 0) + 1,
    )
    # Also here: a task killed by the hard time limit fails in the parent, without postrun.
    run_flag_release_for(request, task_id)
