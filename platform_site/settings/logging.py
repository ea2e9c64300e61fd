"""Logging (structured, apps/core/logging.py) and Django's error reports."""

from django.core.exceptions import ImproperlyConfigured

from apps.core.logging import logging_config
from platform_site.env import env_str

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()  # gunicorn.conf.py reads it too, any case
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {LOG_LEVEL!r})."
    )
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = logging_config(json=LOG_FORMAT != "console", level=LOG_LEVEL)
# Django's error reports (the DEBUG page, mail_admins) hide secrets by name and by look,
# with DEBUG on too, in every frame, header, cookie, form field and query parameter.
DEFAULT_EXCEPTION_REPORTER = "apps.core.error_reports.SecretsHidingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.error_reports.SecretsHidingReporterFilter"
