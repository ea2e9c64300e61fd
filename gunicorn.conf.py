"""gunicorn settings for the web process (environment variables override the defaults)."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# Recycle workers now and then so a slow leak can never take a worker down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
# The app logs one structured line per request itself (apps.core.middleware).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn's own lines (start, worker boot and exit, timeouts) in the same JSON shape as the app's.
from apps.core.logging import logging_config  # noqa: E402

logconfig_dict = logging_config(
    json=os.environ.get("LOG_FORMAT", "json") != "console", level=loglevel.upper()
)
logconfig_dict["loggers"].update(
    {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
    }
)
