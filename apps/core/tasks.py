"""Core's periodic task: the cache invalidations Redis missed."""

from __future__ import annotations

from celery import shared_task

from apps.core.invalidation import invalidations_replay


@shared_task(name="core.invalidations_replay", ignore_result=True)
def invalidations_replay_task() -> int:
    """Apply the cache invalidations Redis missed, then forget them (apps/core/invalidation.py)."""
    return invalidations_replay()
