"""Default periodic jobs, created idempotently (editable afterwards in the admin)."""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask


def schedules_ensure() -> list[str]:
    """Create the default schedules that do not exist yet; returns the names created.

    An operator's edits (interval, enabled) are kept: only missing entries are added.
    """
    created: list[str] = []
    every_10s, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    _, was_created = PeriodicTask.objects.get_or_create(
        name="core.outbox_relay",
        defaults={"task": "core.outbox_relay", "interval": every_10s},
    )
    if was_created:
        created.append("core.outbox_relay")
    return created
