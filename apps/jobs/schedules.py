"""Default periodic jobs, created idempotently (editable afterwards in the admin).

Called by `platform_bootstrap` (which `python3 run.py` runs on every start, and a
deployment runs after `migrate_schemas`). Beat uses django-celery-beat's database
scheduler, so an operator changes a schedule, or disables it, in the public
admin. A default that is missing is created again: to stop a job, disable it
rather than delete it.

Per-tenant jobs are scheduled as `core.jobs_fan_out(<job>)`: one message that
queues the job once per active tenant. Each entry expires (`expire_seconds`)
before its next run is due, so a worker that was down does not come back to a
pile of identical messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    task: str
    args: tuple[str, ...]
    description: str
    expire_seconds: int
    every_seconds: int | None = None  # an interval, or
    crontab: tuple[str, str] | None = None  # (minute, hour) daily, UTC


DEFAULT_SCHEDULES: tuple[DefaultSchedule, ...] = (
    DefaultSchedule(
        name="core.outbox_relay",
        task="core.outbox_relay",
        args=(),
        description="Re-dispatch committed domain events that were never dispatched.",
        expire_seconds=10,
        every_seconds=10,
    ),
    DefaultSchedule(
        name="core.invalidations_replay",
        task="core.invalidations_replay",
        args=(),
        description=(
            "Apply the cache invalidations (revoked sessions, changed users, grants, tenants) "
            "that Redis could not take when they were made."
        ),
        expire_seconds=60,
        every_seconds=60,
    ),
    DefaultSchedule(
        name="jobs.cleanup_expired_sessions",
        task="core.jobs_fan_out",
        args=("cleanup_expired_sessions",),
        description=(
            "Per active tenant: delete ended sessions, spent or expired password-reset "
            "tokens, users soft-deleted longer than USER_RETENTION_DAYS, old event rows."
        ),
        expire_seconds=3600,
        crontab=("0", "3"),
    ),
    DefaultSchedule(
        name="jobs.cleanup_public",
        task="accounts.cleanup_public",
        args=(),
        description=(
            "The public schema: platform operators' ended sessions and spent reset tokens, "
            "operators soft-deleted longer than USER_RETENTION_DAYS, old event rows."
        ),
        expire_seconds=3600,
        crontab=("30", "3"),
    ),
    DefaultSchedule(
        name="tenants.purge_deleted",
        task="tenants.purge_deleted",
        args=(),
        description=(
            "Drop the schema, data and domains of tenants deleted longer than "
            "TENANT_RETENTION_DAYS ago (restorable until then)."
        ),
        expire_seconds=3600,
        crontab=("0", "4"),
    ),
    DefaultSchedule(
        name="jobs.sync_user_data",
        task="core.jobs_fan_out",
        args=("sync_user_data",),
        description="Per active tenant: drop cached auth state and grants that are out of date.",
        expire_seconds=1800,
        every_seconds=1800,
    ),
    DefaultSchedule(
        name="jobs.requeue_stale_deliveries",
        task="core.jobs_fan_out",
        args=("requeue_stale_deliveries",),
        description="Per active tenant: queue again pending deliveries whose task was lost.",
        expire_seconds=300,
        every_seconds=300,
    ),
)


def schedules_ensure() -> list[str]:
    """Create the default schedules that do not exist yet; returns the names created.

    An operator's edits (timing, enabled, arguments) are kept: only missing entries are added.
    """
    created: list[str] = []
    for default in DEFAULT_SCHEDULES:
        if PeriodicTask.objects.filter(name=default.name).exists():
            continue
        timing: dict[str, IntervalSchedule | CrontabSchedule]
        if default.crontab is not None:
            minute, hour = default.crontab
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone="UTC",
            )
            timing = {"crontab": crontab}
        else:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=default.every_seconds, period=IntervalSchedule.SECONDS
            )
            timing = {"interval": interval}
        _, was_created = PeriodicTask.objects.get_or_create(
            name=default.name,
            defaults={
                "task": default.task,
                "args": json.dumps(list(default.args)),
                "description": default.description,
                "expire_seconds": default.expire_seconds,
                **timing,
            },
        )
        if was_created:
            created.append(default.name)
    return created
