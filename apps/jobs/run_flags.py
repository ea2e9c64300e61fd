"""The run flag of periodic jobs: never two runs of one job for one tenant in the queue.

A periodic job's fan-out enqueues one task per active tenant and sets a Redis
flag (key per job and schema, value the task id, with an expiry); the worker
clears it when that task ends (task_postrun, unless it is being retried, or
task_failure: apps/jobs/signals.py). While the flag is set the tenant is
skipped, so a slow or stuck tenant never piles up runs in the queue.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

logger = structlog.get_logger("apps.jobs.run_flags")

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
