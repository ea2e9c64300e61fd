"""Recompute what derives from users and report what was out of date (the sync job).

What derives from a user, and how each is kept right:
- the auth-state cache (authentication.py, one Redis entry per user): dropped on
  every change by signals, so it is normally right; an entry that no longer
  matches the row (a change made behind the ORM's back, an invalidation lost
  while Redis was down) is dropped here;
- the grants cache (rbac/grants.py): entries computed at the current generation
  are recomputed and dropped when they differ;
- the search vector: a generated column PostgreSQL keeps right itself, so never stale.

Cheap by construction: it looks only at what is cached (entries expire within
minutes), in batches, at most SYNC_MAX_ENTRIES of each per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog
from django_redis import get_redis_connection

from apps.accounts.authentication import user_state_key
from apps.accounts.models import User
from apps.core.tenancy import current_schema
from apps.rbac.grants import generation_key, grants_compute, grants_key

logger = structlog.get_logger("apps.accounts.sync")

SYNC_MAX_ENTRIES = 5000
_BATCH = 500


@dataclass(frozen=True)
class UserSyncReport:
    auth_cache_checked: int = 0
    auth_cache_dropped: int = 0
    grants_checked: int = 0
    grants_dropped: int = 0
    search_vectors_updated: int = 0  # generated column: PostgreSQL keeps it current

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _user_ids(pattern_key: str) -> Iterator[list[int]]:
    """Ids of the users with an entry under `pattern_key` (ending in ':*'), in batches."""
    client = get_redis_connection("default")
    prefix = pattern_key[:-1]
    batch: list[int] = []
    seen = 0
    for raw in client.scan_iter(match=pattern_key, count=1000):
        suffix = raw.decode()[len(prefix) :]
        if not suffix.isdigit():
            continue
        batch.append(int(suffix))
        seen += 1
        if len(batch) == _BATCH or seen >= SYNC_MAX_ENTRIES:
            yield batch
            batch = []
            if seen >= SYNC_MAX_ENTRIES:
                return
    if batch:
        yield batch


def _as_cached(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


def _auth_entry_is_current(blob: bytes, user: User | None) -> bool:
    if user is None:
        return False
    try:
        cached = json.loads(blob)
    except ValueError:
        return False
    for name, value in cached.items():
        if name == "id":
            continue
        if not hasattr(user, name) or _as_cached(getattr(user, name)) != value:
            return False
    return True


def _auth_cache_sync() -> tuple[int, int]:
    client = get_redis_connection("default")
    checked = dropped = 0
    for ids in _user_ids(user_state_key("*")):
        keys = [user_state_key(pk) for pk in ids]
        blobs = client.mget(keys)
        users = User.objects.in_bulk(ids)
        stale = [
            key
            for key, pk, blob in zip(keys, ids, blobs, strict=True)
            if blob is not None and not _auth_entry_is_current(blob, users.get(pk))
        ]
        checked += sum(blob is not None for blob in blobs)
        if stale:
            dropped += int(client.delete(*stale))
    return checked, dropped


def _grants_cache_sync() -> tuple[int, int]:
    client = get_redis_connection("default")
    generation = (client.get(generation_key()) or b"0").decode()
    checked = dropped = 0
    for ids in _user_ids(grants_key("*")):
        keys = [grants_key(pk) for pk in ids]
        stale: list[str] = []
        for key, pk, blob in zip(keys, ids, client.mget(keys), strict=True):
            if blob is None:
                continue
            try:
                data = json.loads(blob)
                current = str(data["gen"]) == generation
                cached_grants = data["grants"]
            except (ValueError, KeyError, TypeError):
                stale.append(key)
                continue
            if not current:
                continue  # already ignored by every reader; it expires by itself
            checked += 1
            if grants_compute(pk).as_json() != cached_grants:
                stale.append(key)
        if stale:
            dropped += int(client.delete(*stale))
    return checked, dropped


def user_data_sync() -> UserSyncReport:
    """For the current tenant; what was checked and what was out of date."""
    auth_checked, auth_dropped = _auth_cache_sync()
    grants_checked, grants_dropped = _grants_cache_sync()
    report = UserSyncReport(
        auth_cache_checked=auth_checked,
        auth_cache_dropped=auth_dropped,
        grants_checked=grants_checked,
        grants_dropped=grants_dropped,
    )
    if auth_dropped or grants_dropped:
        logger.warning("user_sync_found_stale_entries", tenant=current_schema(), **report.as_dict())
    return report
