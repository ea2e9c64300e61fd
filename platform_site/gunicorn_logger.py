"""gunicorn's logger, minus the access-log line it would build only to drop it.

The app writes one access line per request itself (apps.core.middleware), so
gunicorn.conf.py sets `gunicorn.access` to WARNING. gunicorn still builds its
own line's fields (a dict of every request header and more) on every request
whenever a logging config is given, and only then learns that nobody listens:
about 70 us of a worker's CPU per request here, for the platform and the
benchmark's bare baseline alike. This logger builds it only when
`gunicorn.access` logs INFO.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]


class GunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # gunicorn computes this before it applies the logging config; ask again after.
        self._access_log_enabled = bool(
            self._compute_access_log_enabled() and self.access_log.isEnabledFor(logging.INFO)
        )
