"""The cache: Redis, one alias per tenant-scoped and platform-wide data."""

from platform_site.env import env_str, redis_url

REDIS_URL = redis_url()
_REDIS_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SOCKET_CONNECT_TIMEOUT": 1,
    "SOCKET_TIMEOUT": 1,
    # Every new connection first applies the invalidations Redis missed while it was away
    # (apps/core/invalidation.py), so a restarted Redis never serves a revoked session.
    "CONNECTION_POOL_CLASS": "apps.core.invalidation.ReplayingConnectionPool",
}
CACHES = {
    # Tenant data: every key is prefixed with the current schema.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform"),
        "KEY_FUNCTION": "apps.core.cache.make_key",
        "OPTIONS": _REDIS_OPTIONS,
    },
    # Platform data that belongs to no tenant (tenant lookup by host): unprefixed by schema.
    "shared": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform") + ":shared",
        "OPTIONS": _REDIS_OPTIONS,
    },
}
