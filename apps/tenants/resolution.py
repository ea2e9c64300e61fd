"""Which tenant a request is for, without a database round trip on a warm worker.

Two levels: a small in-process map (for TENANT_CACHE_LOCAL_SECONDS) in front of
the shared Redis cache (for TENANT_CACHE_SECONDS), in front of the database.
Unknown hosts are cached too, briefly, so a flood of made-up hosts cannot
turn into a flood of queries.

Every change to a tenant or a domain invalidates the shared entries and this
process's map at once (services, the admin and any `save()` go through the
receivers in `signals.py`); other processes drop their copy within
TENANT_CACHE_LOCAL_SECONDS. If Redis is down, lookups go to the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches
from django_tenants.utils import get_public_schema_name
from redis.exceptions import RedisError

from apps.core.invalidation import CacheWrite, invalidate
from apps.tenants.models import Domain, Tenant

logger = structlog.get_logger("apps.tenants.resolution")

_NOT_FOUND = "__no_tenant__"
_LOCAL_MAX_ENTRIES = 10_000
_local: dict[str, tuple[float, Tenant | None]] = {}


def _shared_cache() -> Any:
    return caches["shared"]


def _cached(key: str, load: Callable[[], Tenant | None]) -> Tenant | None:
    now = time.monotonic()
    entry = _local.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]

    tenant: Tenant | None
    try:
        shared = _shared_cache().get(key)
    except RedisError:
        shared = None
    if shared is None:
        tenant = load()
        timeout = settings.TENANT_CACHE_SECONDS if tenant else settings.TENANT_CACHE_MISS_SECONDS
        try:
            _shared_cache().set(key, tenant if tenant else _NOT_FOUND, timeout)
        except RedisError:
            logger.warning("tenant_cache_unavailable")
    else:
        tenant = None if shared == _NOT_FOUND else shared

    if len(_local) >= _LOCAL_MAX_ENTRIES:
        _local.clear()
    _local[key] = (now + settings.TENANT_CACHE_LOCAL_SECONDS, tenant)
    return tenant


def _host_key(hostname: str) -> str:
    return f"tenancy:host:{hostname}"


def _slug_key(slug: str) -> str:
    return f"tenancy:slug:{slug}"


def _schema_key(schema_name: str) -> str:
    return f"tenancy:schema:{schema_name}"


def tenant_for_host(hostname: str) -> Tenant | None:
    def load() -> Tenant | None:
        domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
        return domain.tenant if domain else None

    return _cached(_host_key(hostname), load)


def tenant_for_slug(slug: str) -> Tenant | None:
    return _cached(_slug_key(slug), lambda: Tenant.objects.customers().filter(slug=slug).first())


def public_tenant() -> Tenant:
    schema = get_public_schema_name()
    tenant = _cached(_schema_key(schema), lambda: Tenant.objects.filter(schema_name=schema).first())
    if tenant is None:
        raise RuntimeError("The public tenant row is missing: run `manage.py migrate_schemas`.")
    return tenant


def tenant_cache_invalidate(
    *, hostnames: Iterable[str] = (), slugs: Iterable[str] = (), schemas: Iterable[str] = ()
) -> None:
    keys = (
        [_host_key(h) for h in hostnames]
        + [_slug_key(s) for s in slugs]
        + [_schema_key(s) for s in schemas]
    )
    for key in keys:
        _local.pop(key, None)
    # Redis keys as the shared cache names them; kept to replay if Redis cannot take them.
    invalidate(
        [CacheWrite("DEL", _shared_cache().make_key(key)) for key in keys], what="tenant_cache"
    )


def tenant_cache_clear_local() -> None:
    """Forget this process's copies (what another process would hold)."""
    _local.clear()
