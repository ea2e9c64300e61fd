"""What every background job shares: which errors are worth a retry, what happens
after the last try, the per-tenant run flag of periodic jobs, and once-per-event consumers.

- `TRANSIENT_ERRORS`: a later try can fix them (a database or broker connection
  dropped, Redis unreachable, a provider's timeout). Tenant tasks retry these,
  with exponential backoff and jitter, at most JOBS_MAX_RETRIES times; any other
  exception fails the task at once (retrying a bug only repeats it).
- `job_failure_record` (connected to Celery's task_failure signal in
  platform_site/celery.py): a task that failed for good leaves one JobFailure
  row in the public schema, its arguments redacted of secrets; the admin can
  send it again.
- `run_flag_*`: a periodic job's fan-out enqueues one task per active tenant and
  sets a Redis flag (key per job and schema, value the task id, with an expiry);
  the worker clears it when that task ends (task_postrun, unless it is being
  retried, or task_failure). While the flag is set the tenant is skipped, so a
  slow or stuck tenant never piles up runs in the queue.
- `consume_once`: a consumer inserts (consumer, event_id) first, in its own
  transaction; a second delivery of the event finds the row and does nothing.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import schema_context
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core.errors import TransientError
from apps.core.models import ConsumedEvent, JobFailure
from apps.core.tenancy import public_schema

logger = structlog.get_logger("apps.core.jobs")

T = TypeVar("T")


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


# ------------------------------------------------------------------ failures

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
    from platform_site.celery import app

    if failure.is_redacted:
        raise ValueError("Its arguments were redacted; run the job again by hand instead.")
    headers = {"_schema_name": failure.tenant_schema or public_schema()}
    result = app.send_task(
        failure.task_name, args=failure.args, kwargs=failure.kwargs, headers=headers
    )
    JobFailure.objects.filter(pk=failure.pk).update(
        retried_at=timezone.now(), retry_task_id=result.id
    )
    return str(result.id)


# ------------------------------------------------------------------ periodic run flags

# Set by the fan-out on a periodic job's message: the job's name.
JOB_HEADER = "_platform_job"


def request_header(request: Any, name: str) -> Any:
    """A custom message header (brokers put them in request.headers or on the request itself)."""
    headers = getattr(request, "headers", None) or {}
    if name in headers:
        return headers[name]
    getter = getattr(request, "get", None)
    return getter(name) if getter is not None else None


_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def run_flag_key(job: str, schema: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "platform")
    return f"{prefix}:jobs:run:{job}:{schema}"


def run_flag_take(job: str, schema: str, task_id: str) -> bool:
    """True when no run of `job` for `schema` is queued or running (and now this one is)."""
    return bool(
        get_redis_connection("default").set(
            run_flag_key(job, schema), task_id, nx=True, ex=settings.JOBS_FANOUT_LOCK_SECONDS
        )
    )


def run_flag_release(job: str, schema: str, task_id: str) -> None:
    """Clear the flag if this task set it (a run by hand never clears another's flag)."""
    try:
        get_redis_connection("default").eval(
            _RELEASE_IF_OWNER, 1, run_flag_key(job, schema), task_id
        )
    except RedisError:
        # It expires by itself after JOBS_FANOUT_LOCK_SECONDS.
        logger.warning("job_run_flag_not_released", job=job, tenant=schema)


def run_flag_release_for(request: Any, task_id: str | None) -> None:
    """When a fanned-out run ends (success or final failure, not a retry): clear its flag."""
    job = request_header(request, JOB_HEADER)
    schema = request_header(request, "_schema_name")
    if job and schema and task_id:
        run_flag_release(str(job), str(schema), task_id)


# ------------------------------------------------------------------ consumers


def consume_once(*, consumer: str, event_id: str, handle: Callable[[], T]) -> T | None:
    """Run `handle` unless `consumer` already handled `event_id`; None when it had.

    The mark and the work share one transaction: if the work fails, the mark is
    rolled back with it and a redelivery does the work. Two deliveries running
    at once serialize on the unique index; the second finds the first's mark.
    The mark is one `INSERT ... ON CONFLICT DO NOTHING` (no savepoint needed to
    survive a repeat).
    """
    with transaction.atomic():
        if not _mark_consumed(consumer, event_id):
            logger.info("event_already_consumed", consumer=consumer, event_id=event_id)
            return None
        return handle()


def _mark_consumed(consumer: str, event_id: str) -> bool:
    """Insert the (consumer, event_id) mark; False if it was there (committed) already."""
    table = connection.ops.quote_name(ConsumedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer, event_id, consumed_at) VALUES (%s, %s, %s) "  # noqa: S608 (a model's table name)
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING id",
            [consumer, uuid.UUID(str(event_id)), timezone.now()],
        )
        return cursor.fetchone() is not None


def events_prune(*, older_than_days: int) -> dict[str, int]:
    """Delete dispatched outbox events and consumed-event marks older than the retention.

    Only dispatched events go: a pending one is still the relay's to send. A mark
    outlives any redelivery of its event (the relay resends only undispatched events).
    """
    from apps.core.models import OutboxEvent

    horizon = timezone.now() - timedelta(days=older_than_days)
    events, _ = OutboxEvent.objects.filter(dispatched_at__lt=horizon).delete()
    marks, _ = ConsumedEvent.objects.filter(consumed_at__lt=horizon).delete()
    return {"outbox_events": events, "consumed_events": marks}
