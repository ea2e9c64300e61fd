"""Access and refresh tokens: simplejwt's token classes for the claims, signed with our keys.

Claims of both tokens: `sub` (the user id, a string as RFC 7519 wants),
`tenant` (the schema that issued it), `sid` (the session, i.e. the refresh
family), `jti`, `type` (access / refresh), `iat`, `exp`, and `iss` / `aud`
(checked on every decode). Access tokens also carry `email` and `roles`
(informational: permissions are checked on every request, not read from here).

Tokens are signed with the active Ed25519 key of `apps.keys` (EdDSA, header
`kid`), whose public half is published at /.well-known/jwks.json so other
services verify them offline. Decoding, on every authenticated request, does
not go through simplejwt's token object and PyJWT's general decoder: a token
whose header segment is exactly the one we write for a known, unexpired key
(`{"alg":"EdDSA","kid":...,"typ":"JWT"}`) has its signature (in its one
canonical encoding) verified with that key's cached public key first, and only
then is its payload parsed; any other header goes to PyJWT's decoder with the
key its `kid` names and that key's algorithm only, so an unknown or retired
kid, another algorithm (`alg: none`, HS256 keyed with the public key) or a
`crit` header is refused. The claims are checked as PyJWT checks them (`exp`
with the configured leeway, `iat` / `nbf`, the issuer, the audience, `sub` /
`jti` types), then as simplejwt does (an `exp`, a `jti` and the right `type`),
with simplejwt's messages. The tenant, the session and the user's revocation
instant are checked by `authentication.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import Session, User
from apps.core.tenancy import current_schema
from apps.keys import keyring


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


@dataclass(frozen=True)
class TokenPairDraft:
    """The claims of a token pair, not yet signed (see `token_pair_draft`)."""

    access_claims: dict[str, Any]
    refresh_claims: dict[str, Any]
    refresh_jti: str
    expires_in: int

    def sign(self) -> TokenPair:
        signer = keyring.signer_get()
        return TokenPair(
            access_token=_sign(self.access_claims, signer),
            refresh_token=_sign(self.refresh_claims, signer),
            refresh_jti=self.refresh_jti,
            expires_in=self.expires_in,
        )


def token_pair_draft(
    *, user: User, session: Session, now: datetime | None = None, roles: list[str] | None = None
) -> TokenPairDraft:
    """The claims of a fresh access and refresh token for `session`, unsigned.

    Sign-in builds them before the password hash and signs them only once the password
    checks out (the hash leaves the caches cold for whatever follows it). `roles`: the
    user's role names when the caller has read them already; else they are read here."""
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
    access["roles"] = user_roles(user) if roles is None else roles

    return TokenPairDraft(
        access_claims=dict(access.payload),
        refresh_claims=dict(refresh.payload),
        refresh_jti=str(refresh["jti"]),
        expires_in=int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    )


def token_pair_issue(*, user: User, session: Session, now: datetime | None = None) -> TokenPair:
    """A fresh access token and refresh token for `session` (the caller stores the refresh jti)."""
    return token_pair_draft(user=user, session=session, now=now).sign()


def _sign(claims: dict[str, Any], signer: keyring.Signer) -> str:
    """The compact JWS of `claims` with the issuer and audience simplejwt would add."""
    payload = dict(claims)
    verifier = _verifier_get()
    if verifier.audience is not None:
        payload["aud"] = verifier.audience
    if verifier.issuer is not None:
        payload["iss"] = verifier.issuer
    body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = signer.header + b"." + body
    signature = _b64url(signer.private_key.sign(signing_input))
    return (signing_input + b"." + signature).decode("ascii")


@dataclass(frozen=True)
class _Verifier:
    """What every decode needs from settings, read once (and again when they change)."""

    audience: str | None
    issuer: str | None
    leeway: float
    options: dict[str, Any]
    type_claim: str | None
    jti_claim: str | None


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
        if api_settings.JWK_URL:
            raise ImproperlyConfigured("SIMPLE_JWT JWK_URL is not supported: keys are local.")
        audience = api_settings.AUDIENCE
        _verifier = _Verifier(
            audience=audience,
            issuer=api_settings.ISSUER,
            leeway=_leeway_seconds(api_settings.LEEWAY),
            options={"verify_aud": audience is not None, "verify_signature": True},
            type_claim=api_settings.TOKEN_TYPE_CLAIM,
            jti_claim=api_settings.JTI_CLAIM,
        )
    return _verifier


def _verifier_reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "SIMPLE_JWT":
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


_SIGNATURE_LENGTH = 86  # an Ed25519 signature (64 bytes), base64url without padding

# Tokens whose signature this process verified, with the key that verified them: the
# same access token comes back on every request of its client, and an Ed25519 check
# costs ~85 µs. Keyed by the whole token text, so a hit is the very bytes verified;
# the claims (expiry) are checked again on every decode, and a reloaded key set has new
# key objects, so a retired key's entries no longer match. Oldest entries go first.
_VERIFIED_MAX = 2048
_verified: dict[str, tuple[keyring.VerifyingKey, dict[str, Any]]] = {}


def _remember(raw: str, key: keyring.VerifyingKey, payload: dict[str, Any]) -> None:
    if len(_verified) >= _VERIFIED_MAX:
        try:
            del _verified[next(iter(_verified))]
        except (KeyError, RuntimeError, StopIteration):  # another thread got there first
            pass
    _verified[raw] = (key, payload)


def _fast_payload(raw: str, verifier: _Verifier) -> dict[str, Any] | None:
    """The payload of a token with the exact header we write for a known key, or None for
    any other header."""
    if not isinstance(raw, str):
        raise _Invalid
    token = raw.encode("ascii", "strict")
    header, dot, rest = token.partition(b".")
    if not dot:
        raise _Invalid
    key = keyring.verifying_key_for_header(header)
    if key is None:
        return None
    if key.is_expired(time.time()):
        raise _Invalid
    known = _verified.get(raw)
    if known is not None and known[0] is key:
        payload = dict(known[1])
        _check_registered_claims(payload, verifier)
        return payload
    body, dot, signature = rest.partition(b".")
    if not dot or len(signature) != _SIGNATURE_LENGTH:
        raise _Invalid
    try:
        signature_bytes = base64.urlsafe_b64decode(signature + b"==")
    except binascii.Error:
        raise _Invalid from None
    # One encoding only (base64 decoding ignores stray characters and the last bits).
    if _b64url(signature_bytes) != signature:
        raise _Invalid
    try:
        key.public_key.verify(signature_bytes, token[: len(header) + 1 + len(body)])
    except InvalidSignature:
        raise _Invalid from None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Invalid from None
    if not isinstance(payload, dict):
        raise _Invalid
    _check_registered_claims(payload, verifier)
    _remember(raw, key, payload)
    return dict(payload)


def _general_payload(raw: str, verifier: _Verifier) -> dict[str, Any]:
    """PyJWT's decoder, with the key the token's `kid` names and that key's algorithm only."""
    kid = jwt.get_unverified_header(raw).get("kid")
    if not isinstance(kid, str):
        raise _Invalid
    key = keyring.verifying_key_get(kid)
    if key is None or key.is_expired(time.time()):
        raise _Invalid
    payload: dict[str, Any] = jwt.decode(
        raw,
        key.public_key,
        algorithms=[key.algorithm],
        audience=verifier.audience,
        issuer=verifier.issuer,
        leeway=verifier.leeway,
        options=verifier.options,  # type: ignore[arg-type]
    )
    return payload


def _payload(raw: str, token_type: str) -> dict[str, Any]:
    """The verified payload of `raw`; InvalidToken with simplejwt's message otherwise."""
    verifier = _verifier_get()
    try:
        payload = _fast_payload(raw, verifier)
        if payload is None:
            payload = _general_payload(raw, verifier)
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
