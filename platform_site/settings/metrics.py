"""Prometheus metrics (apps/core/metrics/): /metrics, who may read it, label bounds, the worker's port.

See "Metrics" in docs/observability.md.
"""

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from platform_site.env import env_bool, env_int, env_list, env_str

# Off: no middleware, no query counting, no task signals, /metrics is not served.
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
METRICS_PATH = "/metrics"
# Who may read /metrics (and a worker's port): a bearer token, a list of networks, or both
# (then both must match). With neither, only a direct request from loopback.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network such as 10.0.0.0/8."
        ) from None
# The `tenant` label of the request metrics: each tenant's schema name while fewer than
# METRICS_TENANT_LABEL_MAX tenants exist, else "all" (one series per tenant would not scale).
METRICS_TENANT_LABEL = env_bool("METRICS_TENANT_LABEL", True)
METRICS_TENANT_LABEL_MAX = env_int("METRICS_TENANT_LABEL_MAX", 100)
# A Celery worker serves its own metrics (its pool processes' too) on this port; 0: none.
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_ADDRESS = env_str("METRICS_WORKER_ADDRESS", "127.0.0.1")
# What /metrics reads at scrape time (queue depth, outbox lag, breakers) gives up after this.
METRICS_SCRAPE_TIMEOUT = 2.0
