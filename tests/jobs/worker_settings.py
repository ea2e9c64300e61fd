"""Settings for the processes the jobs tests start (worker, web): the test settings, plus
the test tasks, a queue of the test's own, and real SMTP when EMAIL_HOST is given."""

import os

from platform_site.settings.test import *  # noqa: F403

CELERY_IMPORTS = [*CELERY_IMPORTS, "tests.jobs.worker_tasks"]  # noqa: F405
# Everything these processes enqueue goes to the test's queue, not the shared default.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("JOBS_TEST_QUEUE", "celery")
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
