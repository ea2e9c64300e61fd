"""Celery's task signals, connected when Django loads this app (JobsConfig.ready), in the
worker, in beat and in an eager run alike: each task's log context, its database
connection treated as a request's, a note when it will be retried, a JobFailure when
it failed for good, and the periodic run flag cleared when a run ends.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery.exceptions import WorkerLostError
from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from django.db import close_old_connections

from apps.core.tenancy import current_schema
from apps.jobs.retries import job_failure_record, job_retry_note
from apps.jobs.run_flags import request_header, run_flag_release_for


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
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
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@task_postrun.connect
def _clear_task_context(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    structlog.contextvars.clear_contextvars()
    if state != "RETRY" and task is not None:
        run_flag_release_for(task.request, task_id)


@task_retry.connect
def _note_retry(request: Any = None, **kwargs: Any) -> None:
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
