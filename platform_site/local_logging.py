"""Development logs without the routine: the outbox relay (every 10 s) and the invalidation
replay (every minute) would otherwise log three lines each time (beat sends, the worker
receives, the task succeeds) and bury what matters. Their warnings and errors still show,
and so do every other task's lines; LOG_LEVEL=DEBUG shows everything."""

from __future__ import annotations

import logging

ROUTINE_TASKS = ("core.outbox_relay", "core.invalidations_replay")


class RoutineTasksQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith("celery"):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not any(f"{task}[" in message or f"({task})" in message for task in ROUTINE_TASKS)
