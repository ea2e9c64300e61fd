"""Development: `python3 run.py` (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)."""

import os
import warnings

os.environ.setdefault("DJANGO_DEBUG", "true")
# Logs for a person at a terminal: one readable line per record (LOG_FORMAT=json for JSON).
os.environ.setdefault("LOG_FORMAT", "console")

from apps.core.logging import logging_config
from platform_site.env import env_int, env_str
from platform_site.settings.base import *
from platform_site.settings.base import PLATFORM_BASE_DOMAIN
from platform_site.settings.logging import LOG_FORMAT, LOG_LEVEL

# A fixed development key: sessions survive restarts. Production refuses to start without its own.
SECRET_KEY = SECRET_KEY or "django-insecure-development-only-0a7f3c9e1b5d4f2a8c6e0b9d7f5a3c1e"

ALLOWED_HOSTS = [PLATFORM_BASE_DOMAIN, f".{PLATFORM_BASE_DOMAIN}", "127.0.0.1", "[::1]"]
CORS_ALLOWED_ORIGINS = CORS_ALLOWED_ORIGINS or [
    "http://localhost:3000",
    "http://localhost:5173",
]

# runserver (the Procfile's web) speaks plain http on WEB_PORT (run.py sets it for web,
# worker and beat alike): the links the platform builds must say so.
PLATFORM_URL_SCHEME = env_str("PLATFORM_URL_SCHEME", "http")
PLATFORM_URL_PORT = env_int("PLATFORM_URL_PORT", env_int("WEB_PORT", 8000)) or None

# No mail server configured: one .eml file per message in .local/mail/ (open it with any
# mail client) rather than Django's multi-message .log files.
if not EMAIL_HOST and not os.environ.get("EMAIL_BACKEND"):
    EMAIL_BACKEND = "apps.core.mail.EmlFileBackend"

# Quieter at the default level: no lines for the routine tasks beat sends every few seconds
# (platform_site/local_logging.py). LOG_LEVEL=DEBUG shows everything.
LOGGING = logging_config(json=LOG_FORMAT != "console", level=LOG_LEVEL)
if LOG_LEVEL == "INFO":
    LOGGING["filters"] = {"routine_tasks": {"()": "platform_site.local_logging.RoutineTasksQuiet"}}
    LOGGING["handlers"]["console"]["filters"] = ["routine_tasks"]

# A container (or a laptop's sudo) runs the worker as root; Celery's advice to pick another
# user is for production hosts, where this setting module is not used.
warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
