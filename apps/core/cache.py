"""Tenant-scoped cache keys (Django's CACHES KEY_FUNCTION).

Every key is prefixed with the schema active when it is used, so
`cache.get("x")` in tenant A can never read tenant B's "x".
"""

from __future__ import annotations

from apps.core.tenancy import current_schema


def make_key(key: str, key_prefix: str, version: int) -> str:
    return f"{current_schema()}:{key_prefix}:{version}:{key}"


def reverse_key(key: str) -> str:
    return key.split(":", 3)[3]
