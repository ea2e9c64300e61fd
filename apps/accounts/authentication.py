"""Bearer-token authentication whose revocation check costs no extra round trip.

Per request, an access token is accepted only when:
- its signature, expiry, issuer, audience and type check out and it was issued
  by this tenant (`tokens.access_token_decode`, no I/O);
- its user exists, is active and not deleted, and the token was issued no
  earlier than the user's `tokens_valid_after` (logout-all, password change or
  reset, deactivation, deletion);
- its session (refresh family) has not ended (logout, revocation, reuse).

The user's state (the fields a request needs) and the session's state are
cached in Redis, per tenant, and read by the gateway in the same Lua call that
counts the rate limit (`bearer_identity`). A cache miss costs a query and fills
the cache, never overwriting what is there (SET NX); every change to a user
drops its entry (signals.py) and every session revocation writes an "ended"
marker, which no reader overwrites, so a revoked token fails on the very next
request.
With Redis unavailable the same checks run against the database, and the
invalidations Redis missed are applied before it is trusted again
(apps/core/invalidation.py): the database stays the truth for revocation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.accounts.models import Session, User
from apps.accounts.tokens import Claims, InvalidToken, access_token_decode
from apps.core.gateway import GatewayIdentity, gateway_state, redis_values
from apps.core.invalidation import CacheWrite, invalidate
from apps.core.tenancy import current_schema

logger = structlog.get_logger("apps.accounts.authentication")

USER_STATE_SECONDS = 300
SESSION_LIVE = b"1"
SESSION_ENDED = b"0"

# What a request needs of its user, and everything GET /users/me shows, so that
# answer needs no query. Never the password hash: a user rebuilt from the cache
# cannot be saved whole (User.save refuses), only with update_fields.
_USER_FIELDS = (
    "email",
    "username",
    "full_name",
    "phone_number",
    "is_active",
    "is_staff",
    "is_superuser",
    "is_deleted",
    "pending_email",
)
_USER_TIME_FIELDS = ("tokens_valid_after", "last_login", "created_at", "updated_at", "deleted_at")


@dataclass(frozen=True)
class BearerResult:
    user: User
    claims: Claims


# ------------------------------------------------------------------ cache keys and values


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'platform')}:auth:{current_schema()}"


def user_state_key(user_id: int | str) -> str:
    return f"{_prefix()}:u:{user_id}"


def session_state_key(session_id: str) -> str:
    return f"{_prefix()}:s:{session_id}"


def session_state_seconds() -> int:
    # A revoked marker must outlive every access token of the session.
    from rest_framework_simplejwt.settings import api_settings

    lifetime = api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()
    return int(lifetime + int(api_settings.LEEWAY) + 60)


def _user_blob(user: User) -> bytes:
    data: dict[str, Any] = {field: getattr(user, field) for field in _USER_FIELDS}
    data["id"] = user.pk
    for field in _USER_TIME_FIELDS:
        moment = getattr(user, field)
        data[field] = moment.timestamp() if moment else None
    return json.dumps(data).encode()


def _user_from_blob(blob: bytes) -> User | None:
    try:
        data = json.loads(blob)
        for field in _USER_TIME_FIELDS:
            moment = data[field]
            data[field] = datetime.fromtimestamp(moment, tz=UTC) if moment is not None else None
        user = User(**data)
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        return None
    user._state.adding = False
    user._state.db = "default"
    user.from_auth_cache = True
    return user


def _redis_cache(key: str, value: bytes, seconds: int) -> None:
    """Cache what was just read from the database, unless the key holds something already:
    a session's ended marker, written by a revocation since that read (which may have seen
    the session before it ended), is never overwritten by a reader."""
    try:
        get_redis_connection("default").set(key, value, ex=seconds, nx=True)
    except RedisError:
        logger.warning("auth_state_cache_unavailable")


def user_state_forget(user_id: int | str) -> None:
    """The user's cached state is out of date. (A read racing the change may cache the old
    row again; every change that refuses tokens also ends the user's sessions, whose ended
    markers no reader overwrites, so that old row never lets a revoked token through.)"""
    invalidate([CacheWrite("DEL", user_state_key(user_id))], what="user_state")


def session_state_mark_ended(session_ids: list[str]) -> None:
    invalidate(
        [
            CacheWrite(
                "SET", session_state_key(sid), SESSION_ENDED.decode(), session_state_seconds()
            )
            for sid in session_ids
        ],
        what="session_state",
    )


def _load_user(user_id: int, *, cache: bool) -> User | None:
    user = User.objects.filter(pk=user_id).only("id", *_USER_TIME_FIELDS, *_USER_FIELDS).first()
    if user is not None and cache:
        _redis_cache(user_state_key(user_id), _user_blob(user), USER_STATE_SECONDS)
    return user


def _load_session_state(session_id: str, *, cache: bool) -> bytes:
    live = Session.objects.live().filter(pk=session_id).exists()
    state = SESSION_LIVE if live else SESSION_ENDED
    if cache:
        _redis_cache(session_state_key(session_id), state, session_state_seconds())
    return state


# ------------------------------------------------------------------ the checks


def _resolve(claims: Claims, values: list[bytes | None] | None) -> BearerResult:
    """Apply every check to decoded claims, with the cached state if the gateway read it."""
    cached = values is not None
    user_blob, session_state = (values[0], values[1]) if values else (None, None)
    user = _user_from_blob(user_blob) if user_blob else None
    if user is None or user.pk != claims.user_id:
        user = _load_user(claims.user_id, cache=cached)
    if user is None or not user.is_active or user.is_deleted:
        raise AuthenticationFailed("User not found or inactive")
    valid_after = user.tokens_valid_after
    # `iat` has whole seconds: a token of the same second as the revocation
    # passes this check only if it also belongs to a live session (revocations
    # end the sessions too), so tokens issued after the revocation still work.
    if valid_after is not None and claims.issued_at < int(valid_after.timestamp()):
        raise AuthenticationFailed("Token has been revoked")
    if session_state not in (SESSION_LIVE, SESSION_ENDED):
        session_state = _load_session_state(claims.session_id, cache=cached)
    if session_state != SESSION_LIVE:
        raise AuthenticationFailed("Session has ended")
    return BearerResult(user=user, claims=claims)


def _bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or ""


def bearer_identity(request: HttpRequest) -> GatewayIdentity | None:
    """The gateway identifier (settings.GATEWAY_IDENTIFIERS) for `Authorization: Bearer`: the
    token's user is the bucket, and the user's and session's states are read in the round
    trip. A token that does not decode counts against the client address (None), and
    `BearerAuthentication` answers 401 with the reason."""
    raw = _bearer_token(request)
    if raw is None:
        return None
    try:
        claims = access_token_decode(raw)
    except InvalidToken:
        return None
    return GatewayIdentity(
        client=f"user:{claims.user_id}",
        read_keys=(user_state_key(claims.user_id), session_state_key(claims.session_id)),
        credentials=claims,
    )


def bearer_authenticate(request: HttpRequest) -> BearerResult | None:
    """Every check of the bearer token of `request`, None without one; AuthenticationFailed.

    The claims and the cached states come from the gateway's round trip when it covered the
    request (apps.core.gateway), else the token is decoded here and the states read with one
    MGET; without Redis, from the database."""
    raw = _bearer_token(request)
    if raw is None:
        return None
    state = gateway_state(request)
    claims = state.identity.credentials if state is not None else None
    if not isinstance(claims, Claims):
        try:
            claims = access_token_decode(raw)
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from None
    keys = [user_state_key(claims.user_id), session_state_key(claims.session_id)]
    return _resolve(claims, redis_values(request, keys))


class BearerAuthentication(BaseAuthentication):
    """DRF's side of `Authorization: Bearer`."""

    def authenticate(self, request: Request) -> tuple[User, Claims] | None:
        result = bearer_authenticate(request._request)
        return (result.user, result.claims) if result else None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
