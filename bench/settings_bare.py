"""A bare Django project: the baseline for memory per worker (and a second bare-rps line).

No applications, no middleware, no database, one URLconf with one
`JsonResponse` view; DEBUG off, like the platform's production settings.
"""

import os
import secrets

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(48)
DEBUG = False
ALLOWED_HOSTS = ["localhost", ".localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.urls_bare"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
