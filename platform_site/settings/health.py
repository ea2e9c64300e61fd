"""Health probes (apps/core/health.py): /health/live and /health/ready."""

from platform_site.env import env_bool

HEALTH_CHECK_TIMEOUT = 2
# Readiness asks the workers whether one consumes the default queue: reported always;
# failing readiness only when required (the web serves without a worker).
READINESS_REQUIRE_WORKER = env_bool("READINESS_REQUIRE_WORKER", False)
READINESS_WORKER_TIMEOUT = 0.5
READINESS_WORKER_CACHE_SECONDS = 5
