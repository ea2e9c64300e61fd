"""A user's effective permissions ("grants"), computed from their roles and cached.

`Grants` maps each permission a user holds to where they hold it: everywhere
(an unscoped assignment) or in a set of organization subtrees (the paths of
the organizations their scoped assignments name). Owners hold the whole
catalogue, including permissions added after the role was made.

Cache: one Redis entry per user, `{prefix}:rbac:{schema}:p:{user_id}`, holding
the grants with the tenant's RBAC generation they were computed at; the
generation lives in `{prefix}:rbac:{schema}:gen`. Any change to a role, an
assignment or the organization tree bumps the generation (now, and again after
commit), so every cached entry of the tenant is stale at once and the next
request recomputes (one query). The gateway reads both keys in its single
Redis round trip (`gateway_keys`), so a request that checks a permission costs
no extra round trip on a warm cache. Without Redis the grants come from the
database on every request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import structlog
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.core.context import current_request
from apps.core.errors import ForbiddenError
from apps.core.gateway import redis_values
from apps.core.invalidation import CacheWrite, invalidate
from apps.core.tenancy import current_schema, in_public_schema
from apps.rbac.catalogue import ALL_CODENAMES, BY_CODENAME, OWNER
from apps.rbac.models import RoleAssignment

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.organizations.models import Organization

logger = structlog.get_logger("apps.rbac.grants")

GRANTS_SECONDS = 600
EVERYWHERE = None  # the scope of an unscoped grant


@dataclass(frozen=True)
class Grants:
    # codename -> None (everywhere) or the organization paths it is held under.
    by_permission: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    def has(self, codename: str) -> bool:
        """Held anywhere at all (what a view checks before looking at the object)."""
        return codename in self.by_permission

    def everywhere(self, codename: str) -> bool:
        return codename in self.by_permission and self.by_permission[codename] is None

    def scope(self, codename: str) -> tuple[str, ...] | None:
        """None when held everywhere; else the subtree paths (empty: not held)."""
        if codename not in self.by_permission:
            return ()
        return self.by_permission[codename]

    def allows(self, codename: str, organization: Organization | str | None) -> bool:
        """Held for `organization` (a node or its path): everywhere, or under one of its
        ancestors-or-self. With no organization, only an unscoped grant allows."""
        if codename not in self.by_permission:
            return False
        paths = self.by_permission[codename]
        if paths is None:
            return True
        if organization is None:
            return False
        path = organization if isinstance(organization, str) else organization.path
        return any(path.startswith(scope) for scope in paths)

    def covers(self, codename: str, scope_path: str | None) -> bool:
        """Held at least as widely as `scope_path` (None: everywhere). Used for granting."""
        return (
            self.allows(codename, scope_path)
            if scope_path is not None
            else self.everywhere(codename)
        )

    def not_covering(self, other: Grants) -> list[str]:
        """The permissions `other` holds that these grants do not hold at least as widely:
        for each of other's grants, everywhere if it is unscoped, else over each of its
        subtrees (an ancestor's grant covers a subtree)."""
        lacking = []
        for codename, paths in other.by_permission.items():
            if paths is None:
                held = self.everywhere(codename)
            else:
                held = all(self.allows(codename, path) for path in paths)
            if not held:
                lacking.append(codename)
        return sorted(lacking)

    def as_json(self) -> dict[str, list[str] | None]:
        return {
            codename: None if paths is None else list(paths)
            for codename, paths in sorted(self.by_permission.items())
        }


NO_GRANTS = Grants()
# What a superuser of a tenant schema holds: the admin lets them do anything, as an owner.
EVERY_GRANT = Grants(dict.fromkeys(ALL_CODENAMES))


# ------------------------------------------------------------------ computing


def grants_compute(user_id: int) -> Grants:
    """From the database: one query over the user's assignments."""
    rows = RoleAssignment.objects.filter(user_id=user_id).values_list(
        "role__system_key", "role__permissions", "organization__path"
    )
    merged: dict[str, set[str] | None] = {}
    for system_key, permissions, path in rows:
        codenames = ALL_CODENAMES if system_key == OWNER else set(permissions) & ALL_CODENAMES
        if path is not None:
            # A scope means nothing to a tenant-wide permission (audit.view, say): a scoped
            # assignment never grants one, rather than granting it everywhere.
            codenames = {c for c in codenames if BY_CODENAME[c].scopable}
        for codename in codenames:
            if path is None:
                merged[codename] = None
            elif codename not in merged:
                merged[codename] = {path}
            elif (paths := merged[codename]) is not None:
                paths.add(path)
    return Grants({c: None if p is None else _outermost(p) for c, p in merged.items()})


def _outermost(paths: set[str]) -> tuple[str, ...]:
    """Drop paths inside another one: /1/ already covers /1/5/."""
    kept: list[str] = []
    for path in sorted(paths, key=len):
        if not any(path.startswith(outer) for outer in kept):
            kept.append(path)
    return tuple(sorted(kept))


# ------------------------------------------------------------------ the cache


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'platform')}:rbac:{current_schema()}"


def generation_key() -> str:
    return f"{_prefix()}:gen"


def grants_key(user_id: int | str) -> str:
    return f"{_prefix()}:p:{user_id}"


def gateway_keys(user_id: int | str) -> tuple[str, str]:
    """What the gateway reads for a bearer request, in its one round trip."""
    return (generation_key(), grants_key(user_id))


def _decode(generation: bytes | None, blob: bytes | None) -> Grants | None:
    if blob is None:
        return None
    try:
        data = json.loads(blob)
        if str(data["gen"]) != (generation or b"0").decode():
            return None
        return Grants({c: None if p is None else tuple(p) for c, p in data["grants"].items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _store(user_id: int, generation: bytes | None, grants: Grants) -> None:
    blob = json.dumps({"gen": (generation or b"0").decode(), "grants": grants.as_json()})
    try:
        get_redis_connection("default").set(grants_key(user_id), blob, ex=GRANTS_SECONDS)
    except RedisError:
        logger.warning("rbac_cache_unavailable")


def grants_for_user(user_id: int, request: HttpRequest | None = None) -> Grants:
    """The user's grants: from the gateway's round trip of `request` (apps.core.gateway),
    else one MGET, else the database."""
    if in_public_schema():
        # Platform operators hold no roles (the public schema has no role tables): their
        # reach is the superuser flag and, in the public admin, Django's permissions.
        return NO_GRANTS
    values = redis_values(request, gateway_keys(user_id))
    if values is None:
        return grants_compute(user_id)
    generation, blob = values[0], values[1]
    cached = _decode(generation, blob)
    if cached is not None:
        return cached
    grants = grants_compute(user_id)
    _store(user_id, generation, grants)
    return grants


def grants_changed() -> None:
    """Call after any change to roles, assignments or the organization tree (every
    service does; signals catch the admin and the shell too). A bump Redis cannot take
    is applied before Redis is trusted again (apps/core/invalidation.py)."""
    bump = [CacheWrite("INCR", generation_key())]
    invalidate(bump, what="grants")
    transaction.on_commit(lambda: invalidate(bump, what="grants"))


# ------------------------------------------------------------------ per request


# The grants of each request's user, computed once per request and gone with the request.
_request_grants: WeakKeyDictionary[HttpRequest, Grants] = WeakKeyDictionary()


def request_grants(request: Any) -> Grants:
    """The grants of the request's user (a Django or a DRF request), computed once per request."""
    django_request: HttpRequest = getattr(request, "_request", request)
    found = _request_grants.get(django_request)
    if found is not None:
        return found
    user = getattr(django_request, "user", None)
    if user is None or not user.is_authenticated:
        return NO_GRANTS
    grants = grants_for_user(user.pk, django_request)
    _request_grants[django_request] = grants
    return grants


def user_grants(user: User) -> Grants:
    """For code that has a user but no request (services, tasks, the admin)."""
    request = current_request()
    if request is not None and getattr(request, "user", None) is not None:
        if getattr(request.user, "pk", None) == user.pk:
            return request_grants(request)
    return grants_for_user(user.pk)


def require(user: User, codename: str, organization: Organization | str | None = None) -> None:
    """403 unless `user` holds `codename` for `organization` (everywhere when None)."""
    if not user_grants(user).allows(codename, organization):
        raise ForbiddenError(f"You need the permission {codename} here.")


OUTRANKED = "You cannot change a user who holds permissions you lack"


def require_outranks(actor: User, target: User) -> None:
    """403 unless `actor` holds every permission `target` holds, at least as widely.

    The rule for every write on another user's account (its e-mail, password, sign-in
    state, staff flag, deletion, memberships): nobody acts on someone with more reach
    than their own, so owners are managed by owners only. A superuser of the schema
    counts as holding everything (the admin lets them do anything)."""
    if actor.pk == target.pk:
        return
    held = EVERY_GRANT if actor.is_superuser else user_grants(actor)
    target_grants = EVERY_GRANT if target.is_superuser else grants_for_user(target.pk)
    lacking = held.not_covering(target_grants)
    if lacking:
        raise ForbiddenError(f"{OUTRANKED}: {', '.join(lacking)}.")
