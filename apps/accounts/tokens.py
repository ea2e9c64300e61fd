"""Access and refresh tokens: djangorestframework-simplejwt's token classes with our claims.

Claims of both tokens: `sub` (the user id, a string as RFC 7519 wants),
`tenant` (the schema that issued it), `sid` (the session, i.e. the refresh
family), `jti`, `type` (access / refresh), `iat`, `exp`, and `iss` / `aud`
(checked on every decode). Access tokens also carry `email` and `roles`
(informational: permissions are checked on every request, not read from here).

simplejwt verifies the signature with the one configured algorithm (so
`alg: none` and algorithm swaps are refused), the expiry (with a small leeway),
the issuer, the audience and the token type; the tenant, the session and the
user's revocation instant are checked by `authentication.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import Session, User
from apps.core.tenancy import current_schema


class InvalidToken(Exception):
    """The token is malformed, forged, expired, of the wrong type or from elsewhere."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    refresh_jti: str
    expires_in: int  # seconds until the access token expires

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: str
    jti: str
    issued_at: int
    expires_at: int
    tenant: str
    raw: dict[str, Any]


def user_roles(user: User) -> list[str]:
    roles = []
    if user.is_superuser:
        roles.append("superuser")
    if user.is_staff:
        roles.append("staff")
    return roles or ["member"]


def token_pair_issue(*, user: User, session: Session, now: datetime | None = None) -> TokenPair:
    """A fresh access token and refresh token for `session` (the caller stores the refresh jti)."""
    now = now or timezone.now()
    schema = current_schema()

    refresh = RefreshToken()
    refresh.set_iat(at_time=now)
    lifetime: timedelta = api_settings.REFRESH_TOKEN_LIFETIME
    refresh.set_exp(from_time=now, lifetime=min(lifetime, session.expires_at - now))
    refresh["sub"] = str(user.pk)
    refresh["tenant"] = schema
    refresh["sid"] = str(session.id)

    access = AccessToken()
    access.set_iat(at_time=now)
    access.set_exp(from_time=now, lifetime=api_settings.ACCESS_TOKEN_LIFETIME)
    access["sub"] = str(user.pk)
    access["tenant"] = schema
    access["sid"] = str(session.id)
    access["email"] = user.email
    access["roles"] = user_roles(user)

    expires_in = int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
    return TokenPair(
        access_token=str(access),
        refresh_token=str(refresh),
        refresh_jti=str(refresh["jti"]),
        expires_in=expires_in,
    )


def _decode(token_class: type[AccessToken] | type[RefreshToken], raw: str) -> Claims:
    try:
        # simplejwt's stubs say Token, but the encoded string is what it decodes.
        token = token_class(raw)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidToken(str(exc)) from None
    payload = token.payload
    try:
        claims = Claims(
            user_id=int(payload["sub"]),
            session_id=str(payload["sid"]),
            jti=str(payload["jti"]),
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            tenant=str(payload["tenant"]),
            raw=dict(payload),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("Token is missing required claims") from None
    if claims.tenant != current_schema():
        # A token is only good on the tenant that issued it, even when another
        # tenant has a user with the same id.
        raise InvalidToken("Token was not issued for this tenant")
    return claims


def access_token_decode(raw: str) -> Claims:
    return _decode(AccessToken, raw)


def refresh_token_decode(raw: str) -> Claims:
    return _decode(RefreshToken, raw)
