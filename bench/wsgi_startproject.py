"""WSGI entry of the startproject-like baseline server (`bench.settings_startproject`)."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_startproject"

from django.core.wsgi import get_wsgi_application
from django.db import connections

application = get_wsgi_application()

# A Django service on PostgreSQL has its database driver loaded (the platform's
# workers load theirs at start-up too). Only the backend is set up here; no
# connection is opened before gunicorn forks.
connections["default"].ops  # noqa: B018
