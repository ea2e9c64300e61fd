"""Forgetting everything Redis holds about one schema, when that schema is dropped.

A dropped tenant's slug is free again, and a new tenant with it gets the same
schema name, with user and session ids that start over. Entries cached for the
old schema (a user's state, a live session, grants, a sign-in lock, a job's run
flag) would then describe somebody else: they are deleted with the schema.

The keys are found with SCAN (never KEYS, which blocks Redis), by the prefixes
each module gives its keys; a new per-schema key prefix belongs in
`schema_key_patterns`.
"""

from __future__ import annotations

import re

import structlog
from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.core.errors import ServiceUnavailableError

logger = structlog.get_logger("apps.tenants.schema_cache")

_SCAN_COUNT = 1000
_DELETE_BATCH = 500


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def schema_key_patterns(schema_name: str) -> list[str]:
    """Redis glob patterns matching every key kept for `schema_name`, and no other schema's."""
    schema = _glob_escape(schema_name)
    prefix = _glob_escape(str(settings.CACHES["default"].get("KEY_PREFIX", "platform")))
    limits = _glob_escape(str(settings.RATE_LIMIT_KEY_PREFIX))
    return [
        f"{schema}:{prefix}:*",  # Django's cache API in that schema (apps.core.cache.make_key)
        f"{prefix}:auth:{schema}:*",  # users' and sessions' state (apps.accounts.authentication)
        f"{prefix}:rbac:{schema}:*",  # grants and their generation (apps.rbac.grants)
        f"{limits}:auth:{schema}:*",  # sign-in and reset limits (apps.accounts.limits)
        f"{prefix}:jobs:run:*:{schema}",  # periodic jobs' run flags (apps.jobs.run_flags)
    ]


def schema_cache_purge(schema_name: str) -> int:
    """Delete every key kept for `schema_name`; how many were deleted.

    Raises ServiceUnavailableError when Redis cannot be reached: a schema is dropped only
    once what is cached about it is gone (see `schema_cache_purge_quietly` for the pass
    after the drop)."""
    try:
        redis = get_redis_connection("default")
        deleted = 0
        for pattern in schema_key_patterns(schema_name):
            batch: list[bytes] = []
            for key in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
                batch.append(key)
                if len(batch) >= _DELETE_BATCH:
                    deleted += int(redis.delete(*batch))
                    batch = []
            if batch:
                deleted += int(redis.delete(*batch))
    except RedisError:
        logger.warning("tenant_cache_purge_failed", tenant=schema_name)
        raise ServiceUnavailableError(
            "The cache is unreachable, so what it holds about this tenant cannot be "
            "forgotten; its schema is not dropped. Try again when Redis is back."
        ) from None
    return deleted


def schema_cache_purge_quietly(schema_name: str) -> None:
    """The same, after the drop has committed: catches what a request that was already
    under way cached meanwhile. A failure is logged (those entries expire by themselves)."""
    try:
        schema_cache_purge(schema_name)
    except ServiceUnavailableError:
        pass
