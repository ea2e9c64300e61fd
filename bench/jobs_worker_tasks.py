"""The jobs benchmark's reference task, loaded by its worker (`celery worker -I bench.jobs_worker_tasks`)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="bench.empty", ignore_result=False)
def empty() -> None:
    """Nothing: what a bare Celery round trip (publish, consume, store the result) costs."""
