"""The job machinery (apps/jobs): retries, periodic fan-out, cleanup."""

from platform_site.env import env_int

# Retries with exponential backoff for transient errors only (apps/jobs/retries.py
# TRANSIENT_ERRORS), at most this many times; then the failure is recorded as a
# JobFailure (admin) instead of looping. The backoff ceiling stays below the
# Redis broker's visibility timeout, so a waiting retry is never delivered twice.
JOBS_MAX_RETRIES = env_int("JOBS_MAX_RETRIES", 5)
JOBS_RETRY_BACKOFF_MAX = env_int("JOBS_RETRY_BACKOFF_MAX", 300)
# A periodic job's run for one tenant holds a Redis flag from enqueue to finish;
# the next fan-out skips that tenant meanwhile. The flag expires after this long
# (a lost worker never blocks a tenant for longer).
JOBS_FANOUT_LOCK_SECONDS = env_int("JOBS_FANOUT_LOCK_SECONDS", 3600)
# The fan-out walks the tenants a page at a time: at most 1.5 pages of one job's runs
# are queued or running at once (apps/jobs/periodic.py).
JOBS_FAN_OUT_BATCH = env_int("JOBS_FAN_OUT_BATCH", 100)
# The cleanup job deletes dispatched outbox events and consumed-event marks older than this.
JOBS_EVENT_RETENTION_DAYS = env_int("JOBS_EVENT_RETENTION_DAYS", 30)
