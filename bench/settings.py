"""Production settings as the benchmark serves them, plus only what the benchmark needs.

`foundation.py` passes a random DJANGO_SECRET_KEY (the same to every process
of one run), ALLOWED_HOSTS, SECURE_SSL_REDIRECT=false (the benchmark speaks
plain HTTP to gunicorn, as a TLS-terminating proxy would), an API_RATE_LIMIT
high enough that the limiter counts every request but never rejects one, and
its own CACHE_KEY_PREFIX. The defaults below only make the module importable
on its own (mypy, a manual `manage.py` call); nothing else is changed, so the
request path measured is production's.
"""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,.localhost")
os.environ.setdefault("API_RATE_LIMIT", "100000000/m")
os.environ.setdefault("CACHE_KEY_PREFIX", "platform-bench")

from platform_site.settings.production import *  # noqa: F403
from platform_site.settings.production import LOCAL_DIR

# Production serves collected static files (collectstatic runs at build time);
# the benchmark collects them into its own folder, not the source tree's.
STATIC_ROOT = LOCAL_DIR / "staticfiles"
