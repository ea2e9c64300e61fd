"""Access and refresh tokens: djangorestframework-simplejwt's token classes with our claims.

Claims of both tokens: `sub` (the user id, a string as RFC 7519 wants),
`tenant` (the schema that issued it), `sid` (the session, i.e. the refresh
family), `jti`, `type` (access / refresh), `iat`, `exp`, and `iss` / `aud`
(checked on every decode). Access tokens also carry `email` and `roles`
(informational: permissions are checked on every request, not read from here).

simplejwt issues both tokens. Decoding, on every authenticated request, does
not go through simplejwt's token object and PyJWT's general decoder (together
more than the rest of the authentication): a token with the header simplejwt
issues (`{"alg":"HS256","typ":"JWT"}` for the configured HMAC algorithm) has
its signature checked here first, against the exact canonical encoding of the
HMAC (constant-time), and only then is its payload parsed; any other header
(another algorithm, `alg: none`, a `kid` or `crit`) goes to PyJWT's decoder
with the one configured algorithm, so it is refused or checked as before. The
claims are checked as PyJWT checks them (`exp` with the configured leeway,
`iat` / `nbf`, the issuer, the audience, `sub` / `jti` types), then as
simplejwt does (an `exp`, a `jti` and the right `type`), with simplejwt's
messages. The tenant, the session and the user's revocation instant are
checked by `authentication.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt_settings
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
    """The names of the roles the user holds (anywhere), for the token's informational
    `roles` claim. Permissions are never read from the token: they are checked per request."""
    from django_tenants.utils import get_public_schema_name

    from apps.rbac.models import RoleAssignment

    if current_schema() == get_public_schema_name():
        # Platform operators: roles live in tenant schemas only.
        return ["operator"] if user.is_staff else []
    names = RoleAssignment.objects.filter(user=user).values_list("role__name", flat=True)
    return sorted(set(names))


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


_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


@dataclass(frozen=True)
class _Verifier:
    """What every decode needs from settings, read once (and again when they change)."""

    key: Any
    algorithms: list[str]
    audience: str | None
    issuer: str | None
    leeway: float
    options: dict[str, Any]
    type_claim: str | None
    jti_claim: str | None
    # The fast path: the header segment simplejwt (PyJWT) writes, and the HMAC to check.
    hmac_header: bytes | None
    hmac_digest: Any


_verifier: _Verifier | None = None


def _leeway_seconds(leeway: Any) -> float:
    if leeway is None:
        return 0.0
    if isinstance(leeway, timedelta):
        return leeway.total_seconds()
    return float(leeway)


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _verifier_get() -> _Verifier:
    global _verifier
    if _verifier is None:
        # Through the module: simplejwt replaces its api_settings when SIMPLE_JWT changes.
        api_settings = simplejwt_settings.api_settings
        algorithm = str(api_settings.ALGORITHM)
        if api_settings.JWK_URL:
            raise ImproperlyConfigured("SIMPLE_JWT JWK_URL is not supported: keys are local.")
        key = api_settings.SIGNING_KEY if algorithm.startswith("HS") else api_settings.VERIFYING_KEY
        # The key as simplejwt verifies with it (PyJWT refuses PEM / SSH keys for HMAC).
        prepared = jwt.PyJWS().get_algorithm_by_name(algorithm).prepare_key(key)
        digest = _HMAC_DIGESTS.get(algorithm)
        header = json.dumps({"alg": algorithm, "typ": "JWT"}, separators=(",", ":"))
        audience = api_settings.AUDIENCE
        _verifier = _Verifier(
            key=prepared,
            algorithms=[algorithm],
            audience=audience,
            issuer=api_settings.ISSUER,
            leeway=_leeway_seconds(api_settings.LEEWAY),
            options={"verify_aud": audience is not None, "verify_signature": True},
            type_claim=api_settings.TOKEN_TYPE_CLAIM,
            jti_claim=api_settings.JTI_CLAIM,
            hmac_header=_b64url(header.encode()) if digest is not None else None,
            hmac_digest=digest,
        )
    return _verifier


def _verifier_reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SIMPLE_JWT", "SECRET_KEY"):
        global _verifier
        _verifier = None


setting_changed.connect(_verifier_reset, dispatch_uid="apps.accounts.tokens.verifier_reset")


class _Expired(Exception):
    pass


class _Invalid(Exception):
    pass


def _check_registered_claims(payload: dict[str, Any], verifier: _Verifier) -> None:
    """PyJWT's checks of `decode(..., audience=, issuer=, leeway=)` with default options."""
    now = time.time()
    leeway = verifier.leeway
    for claim in ("iat", "nbf"):
        if claim in payload:
            try:
                moment = int(payload[claim])
            except (ValueError, TypeError, OverflowError):
                raise _Invalid from None
            if moment > now + leeway:
                raise _Invalid
    if "exp" in payload:
        try:
            expires = int(payload["exp"])
        except (ValueError, TypeError, OverflowError):
            raise _Invalid from None
        if expires <= now - leeway:
            raise _Expired
    if verifier.issuer is not None and payload.get("iss", _MISSING) != verifier.issuer:
        raise _Invalid
    audiences = payload.get("aud")
    if verifier.audience is None:
        if audiences:
            raise _Invalid
    else:
        if not audiences:
            raise _Invalid
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences):
            raise _Invalid
        if verifier.audience not in audiences:
            raise _Invalid
    if "sub" in payload and not isinstance(payload["sub"], str):
        raise _Invalid
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise _Invalid


_MISSING = object()


def _hmac_payload(raw: str, verifier: _Verifier) -> dict[str, Any] | None:
    """The payload of a token with simplejwt's own header, or None for any other header."""
    if not isinstance(raw, str):
        raise _Invalid
    token = raw.encode("ascii", "strict")
    header, dot, rest = token.partition(b".")
    if header != verifier.hmac_header or not dot:
        return None
    body, dot, signature = rest.partition(b".")
    if not dot:
        raise _Invalid
    expected = hmac.new(verifier.key, token[: len(header) + 1 + len(body)], verifier.hmac_digest)
    # The exact canonical encoding of the MAC, compared in constant time.
    if not hmac.compare_digest(_b64url(expected.digest()), signature):
        raise _Invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Invalid from None
    if not isinstance(payload, dict):
        raise _Invalid
    _check_registered_claims(payload, verifier)
    return payload


def _payload(raw: str, token_type: str) -> dict[str, Any]:
    """The verified payload of `raw`; InvalidToken with simplejwt's message otherwise."""
    verifier = _verifier_get()
    try:
        payload = _hmac_payload(raw, verifier) if verifier.hmac_header is not None else None
        if payload is None:
            payload = jwt.decode(
                raw,
                verifier.key,
                algorithms=verifier.algorithms,
                audience=verifier.audience,
                issuer=verifier.issuer,
                leeway=verifier.leeway,
                options=verifier.options,  # type: ignore[arg-type]
            )
    except (_Expired, jwt.ExpiredSignatureError):
        raise InvalidToken("Token is expired") from None
    except (_Invalid, jwt.InvalidTokenError, TypeError, ValueError):
        # TypeError / ValueError: not text, or not ASCII; simplejwt answers the same.
        raise InvalidToken("Token is invalid") from None
    # What simplejwt's Token.verify() adds (PyJWT checks `exp` only when present).
    if "exp" not in payload:
        raise InvalidToken("Token has no 'exp' claim")
    if verifier.jti_claim is not None and verifier.jti_claim not in payload:
        raise InvalidToken("Token has no id")
    if verifier.type_claim is not None:
        if verifier.type_claim not in payload:
            raise InvalidToken("Token has no type")
        if payload[verifier.type_claim] != token_type:
            raise InvalidToken("Token has wrong type")
    return payload


def _decode(token_class: type[AccessToken] | type[RefreshToken], raw: str) -> Claims:
    payload = _payload(raw, str(token_class.token_type))
    try:
        claims = Claims(
            user_id=int(payload["sub"]),
            session_id=str(payload["sid"]),
            jti=str(payload["jti"]),
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            tenant=str(payload["tenant"]),
            raw=payload,
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
