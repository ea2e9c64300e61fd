"""What happens when a background task fails: which errors are worth a retry, and the
record a task leaves after its last try.

- `TRANSIENT_ERRORS`: a later try can fix them (a database or broker connection
  dropped, Redis unreachable, a provider's timeout). Tenant tasks retry these,
  with exponential backoff and jitter, at most JOBS_MAX_RETRIES times; any other
  exception fails the task at once (retrying a bug only repeats it).
- `job_failure_record` (connected to Celery's task_failure signal in
  apps/jobs/signals.py): a task that failed for good leaves one JobFailure
  row in the public schema, its arguments redacted of secrets; the admin can
  send it again.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

import structlog
from celery import current_app
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import schema_context
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core.errors import TransientError
from apps.core.tenancy import public_schema
from apps.jobs.models import JobFailure

logger = structlog.get_logger("apps.jobs.retries")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # Django's: the database connection dropped, a serialization failure
    InterfaceError,  # the connection was already closed
    KombuOperationalError,  # the broker is unreachable (publishing a follow-up task)
    RedisConnectionError,
    RedisTimeoutError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,  # the built-in family: refused, reset, aborted
    TimeoutError,
    TransientError,  # the apps' own (a notification provider's transient failure)
)


def retry_options() -> dict[str, Any]:
    """The retry policy every tenant task gets unless it says otherwise."""
    return {
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": True,
        "retry_backoff_max": settings.JOBS_RETRY_BACKOFF_MAX,
        "retry_jitter": True,
        "max_retries": settings.JOBS_MAX_RETRIES,
    }


REDACTED = "[redacted]"
_SECRET_WORDS = ("password", "secret", "token", "authorization", "api_key", "apikey", "cookie")
_MAX_TEXT = 20_000


def _is_secret_key(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact(value: Any) -> tuple[Any, bool]:
    """`value` with every entry under a secret-looking key replaced; and whether any was."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            if _is_secret_key(key):
                out[str(key)] = REDACTED
                changed = True
            else:
                out[str(key)], inner = redact(item)
                changed |= inner
        return out, changed
    if isinstance(value, list | tuple):
        items = [redact(item) for item in value]
        return [item for item, _ in items], any(inner for _, inner in items)
    if value is None or isinstance(value, bool | int | float | str):
        return value, False
    return repr(value)[:200], False


def _first_failure_key(task_id: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'platform')}:jobs:first-fail:{task_id}"


def job_retry_note(*, task_id: str) -> None:
    """Remember when a task first failed (a retry is coming); read by the failure record."""
    with suppress(RedisError):
        get_redis_connection("default").set(
            _first_failure_key(task_id), timezone.now().isoformat(), nx=True, ex=86_400
        )


def job_failure_record(
    *,
    task_name: str,
    task_id: str,
    schema: str,
    args: Any,
    kwargs: Any,
    exception: BaseException,
    traceback: str,
    attempts: int,
) -> JobFailure | None:
    """One row per failed task id (a redelivered copy failing again updates it)."""
    safe_args, args_redacted = redact(list(args or []))
    safe_kwargs, kwargs_redacted = redact(dict(kwargs or {}))
    now = timezone.now()
    first_failed_at = now
    with suppress(RedisError, ValueError):
        client = get_redis_connection("default")
        noted = client.get(_first_failure_key(task_id))
        if noted:
            first_failed_at = datetime.fromisoformat(noted.decode())
        client.delete(_first_failure_key(task_id))
    try:
        # The task's own failure may have been the database going away (never
        # inside a transaction: that is a caller's, e.g. an eager task in a test).
        if not connection.in_atomic_block:
            close_old_connections()
        fields = {
            "task_name": task_name,
            "tenant_schema": "" if schema == public_schema() else schema,
            "args": safe_args,
            "kwargs": safe_kwargs,
            "is_redacted": args_redacted or kwargs_redacted,
            "exception_type": f"{type(exception).__module__}.{type(exception).__name__}",
            "exception_message": str(exception)[:_MAX_TEXT],
            "traceback": traceback[-_MAX_TEXT:],
            "attempts": attempts,
            "last_failed_at": now,
        }
        with schema_context(public_schema()):
            failure, _ = JobFailure.objects.update_or_create(
                task_id=task_id,
                defaults=fields,
                create_defaults={**fields, "first_failed_at": first_failed_at},
            )
    except Exception:  # a failure handler must not fail the worker
        logger.exception("job_failure_not_recorded", task=task_name, task_id=task_id)
        return None
    logger.error(
        "job_failed",
        task=task_name,
        task_id=task_id,
        tenant=schema,
        attempts=attempts,
        exception=failure.exception_type,
    )
    return failure


def job_failure_retry(*, failure: JobFailure) -> str:
    """Send the failed task again, in the schema it ran in; returns the new task id."""
    if failure.is_redacted:
        raise ValueError("Its arguments were redacted; run the job again by hand instead.")
    headers = {"_schema_name": failure.tenant_schema or public_schema()}
    result = current_app.send_task(
        failure.task_name, args=failure.args, kwargs=failure.kwargs, headers=headers
    )
    JobFailure.objects.filter(pk=failure.pk).update(
        retried_at=timezone.now(), retry_task_id=result.id
    )
    return str(result.id)
