"""The metric objects (prometheus_client), one per name. Imported on first use only.

In a process started with PROMETHEUS_MULTIPROC_DIR set (gunicorn's workers, a Celery
worker's pool; see gunicorn.conf.py and `apps.core.metrics.celery`) every value is kept in
a file of that directory, and /metrics adds the files of every process up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# No `_created` series beside each counter and histogram (a second series per label set,
# which the multiprocess mode does not write anyway).
disable_created_metrics()

# Seconds: from 5 ms (a cached read) to 10 s (past the gateway's patience).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method, status code and tenant.",
    ["route", "method", "status", "tenant"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (the whole middleware chain), by route template, method, "
    "status class and tenant.",
    ["route", "method", "status_class", "tenant"],
    buckets=REQUEST_BUCKETS,
)
DB_QUERIES_PER_REQUEST = Histogram(
    "db_queries_per_request",
    "SQL statements an HTTP request ran, by route template.",
    ["route"],
    buckets=QUERY_BUCKETS,
)

CELERY_TASK_RUNS = Counter(
    "celery_task_runs",
    "Celery task runs ended, by task and outcome (success, failure, retry, ...).",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Time a Celery task ran, by task.",
    ["task"],
    buckets=TASK_BUCKETS,
)

NOTIFICATION_DELIVERIES = Counter(
    "notification_deliveries",
    "Provider calls for notification deliveries, by channel and the outcome recorded "
    "(sent, failed, skipped, pending: to retry or waiting for the breaker).",
    ["channel", "status"],
)
RATELIMIT_REFUSALS = Counter(
    "ratelimit_refusals",
    "Requests refused by a rate limit, by scope: api (the gateway) or a brute-force limit.",
    ["scope"],
)
SIGNIN_ATTEMPTS = Counter(
    "auth_signin_attempts",
    "Password sign-ins let through the brute-force limits (API and admin); "
    "failures are attempts minus successes.",
)
SIGNIN_SUCCESSES = Counter("auth_signin_successes", "Password sign-ins that succeeded.")
SIGNIN_LOCKOUTS = Counter(
    "auth_signin_lockouts", "Sign-ins refused because the account is locked after failures."
)
