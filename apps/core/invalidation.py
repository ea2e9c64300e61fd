"""Cache invalidations that no Redis outage or restart can undo.

The database is the truth for what has been revoked (sessions, access tokens,
grants, tenants); Redis caches it so that a request needs no query. A revocation
writes the database first, then invalidates the cache with Redis writes (an
"ended" marker, a tombstone, a newer generation, a deleted entry): `invalidate()`.

When Redis cannot take those writes (it is down, restarting, out of reach), they
are kept in the public schema (`PendingInvalidation`), in the caller's
transaction, and applied before Redis is trusted again:

- before the first command of every new connection to Redis
  (`ReplayingConnection`, the connection class of the cache's pool). A Redis that
  restarted, and replayed its append-only file, or that comes back after an
  outage, is reached through new connections only, so whatever stale entry it
  restored is corrected before anyone reads it. If the pending writes cannot be
  read (the database is unreachable too), the connection is refused, and callers
  fall back to the database as for any Redis outage;
- by the periodic job `core.invalidations_replay` (every minute), which also
  deletes what it applied. It covers the one case the first cannot: only the
  revoking process lost Redis while other processes kept their connections; they
  may accept a revoked token until then (at most a minute).

Every such write only makes the cache stricter (an ended session, a forgotten
entry, a newer generation), so applying one late, twice or after newer writes is
always safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from django.core.exceptions import AppRegistryNotReady
from django.db import Error as DatabaseError
from django.db import transaction
from django.db.transaction import TransactionManagementError
from django_redis import get_redis_connection
from redis.connection import (
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = structlog.get_logger("apps.core.invalidation")

# A new connection applies at most this many pending writes before its first command (more
# would be a very long outage; the periodic job works through the rest, oldest first).
REPLAY_ON_CONNECT_LIMIT = 10_000
REPLAY_BATCH = 1_000


@dataclass(frozen=True)
class CacheWrite:
    command: str  # "SET", "DEL" or "INCR"
    key: str
    value: str = ""
    seconds: int | None = None  # SET's expiry

    def args(self) -> tuple[Any, ...]:
        if self.command == "SET":
            return ("SET", self.key, self.value, *(("EX", self.seconds) if self.seconds else ()))
        return (self.command, self.key)


def invalidate(writes: Sequence[CacheWrite], *, what: str) -> None:
    """Apply `writes` to Redis now, in one round trip; if Redis cannot take them, keep them
    to be applied before Redis is trusted again (in the caller's transaction, if any)."""
    if not writes:
        return
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for write in writes:
            pipe.execute_command(*write.args())
        pipe.execute()
    except RedisError as exc:
        _keep(writes, what=what, error=exc)


def _keep(writes: Sequence[CacheWrite], *, what: str, error: Exception) -> None:
    from django_tenants.utils import schema_context

    from apps.core.models import PendingInvalidation
    from apps.core.tenancy import public_schema

    try:
        with schema_context(public_schema()), transaction.atomic():
            PendingInvalidation.objects.bulk_create(
                PendingInvalidation(command=w.command, key=w.key, value=w.value, seconds=w.seconds)
                for w in writes
            )
    except (DatabaseError, TransactionManagementError):
        # Nothing left to keep them in: the entries expire by themselves (their TTLs).
        logger.error("cache_invalidation_lost", what=what, writes=len(writes))
        return
    logger.warning(
        "cache_invalidation_pending", what=what, writes=len(writes), error=type(error).__name__
    )


def _pending(limit: int) -> list[tuple[int, CacheWrite]]:
    from django_tenants.utils import schema_context

    from apps.core.models import PendingInvalidation
    from apps.core.tenancy import public_schema

    with schema_context(public_schema()):
        rows = PendingInvalidation.objects.order_by("id").values_list(
            "id", "command", "key", "value", "seconds"
        )[:limit]
        return [
            (pk, CacheWrite(command, key, value, seconds))
            for pk, command, key, value, seconds in rows
        ]


class _Replaying:
    """Applies the pending invalidations on a new Redis connection before it is used."""

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health=check_health)  # type: ignore[misc]
        try:
            pending = _pending(REPLAY_ON_CONNECT_LIMIT)
        except AppRegistryNotReady:
            return  # nothing Django-backed can have been cached yet
        except (DatabaseError, TransactionManagementError) as exc:
            # What was revoked while Redis was away is unknown: do not trust it.
            raise RedisConnectionError(
                "Pending cache invalidations could not be read; Redis is not trusted until "
                "they can be."
            ) from exc
        if not pending:
            return
        connection: Connection = self  # type: ignore[assignment]
        connection.send_packed_command(
            connection.pack_commands(write.args() for _, write in pending)
        )
        for _ in pending:
            connection.read_response()
        logger.warning("cache_invalidations_replayed", writes=len(pending), on="connect")


class ReplayingConnection(_Replaying, Connection):
    pass


class ReplayingSSLConnection(_Replaying, SSLConnection):
    pass


class ReplayingUnixConnection(_Replaying, UnixDomainSocketConnection):
    pass


_REPLAYING = {
    Connection: ReplayingConnection,
    SSLConnection: ReplayingSSLConnection,
    UnixDomainSocketConnection: ReplayingUnixConnection,
}


class ReplayingConnectionPool(ConnectionPool):
    """The cache's pool (CACHES OPTIONS CONNECTION_POOL_CLASS): its connections, whatever
    the URL's scheme, replay the pending invalidations when they connect."""

    def __init__(self, connection_class: type[Connection] = Connection, **kwargs: Any) -> None:
        super().__init__(
            connection_class=_REPLAYING.get(connection_class, connection_class), **kwargs
        )


def invalidations_replay() -> int:
    """Apply every pending invalidation and delete it (the periodic job); returns how many."""
    from django_tenants.utils import schema_context

    from apps.core.models import PendingInvalidation
    from apps.core.tenancy import public_schema

    done = 0
    while batch := _pending(REPLAY_BATCH):
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for _, write in batch:
            pipe.execute_command(*write.args())
        pipe.execute()  # a RedisError leaves the rows for the next run
        with schema_context(public_schema()):
            PendingInvalidation.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        done += len(batch)
    if done:
        logger.warning("cache_invalidations_replayed", writes=done, on="job")
    return done
