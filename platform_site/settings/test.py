"""The test suite: real PostgreSQL and Redis (embedded by `python3 run.py test`, or from the env)."""

import os

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("CACHE_KEY_PREFIX", "platform-test")

from platform_site.env import redis_db_url, redis_url
from platform_site.settings.base import *

SECRET_KEY = "test-only-secret-key-long-enough-for-django-0123456789-abcdefghij"  # noqa: S105
ALLOWED_HOSTS = ["localhost", ".localhost", "testserver"]

# Hashing cost belongs in the benchmark, not in every test that creates a user.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# High enough that ordinary tests never meet it; the rate-limit tests set their own.
API_RATE_LIMIT = "100000/m"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Tests start a real worker with `-A platform_site`; it must see the test tasks.
CELERY_IMPORTS = ["tests.worker_tasks"]
# The worker tests read task results (success and failure) back.
CELERY_RESULT_BACKEND = redis_db_url(redis_url(), 2)
CELERY_TASK_IGNORE_RESULT = False

# The notification tests' provider stubs (a Twilio-style API) listen on 127.0.0.1 over
# http, in this process and in the worker the delivery tests start; the outbound guard's
# tests turn this off to see such URLs refused.
NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES = True
