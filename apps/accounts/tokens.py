"""Access and refresh tokens: simplejwt's token classes for the claims, signed with our keys.

Claims of both tokens: `sub` (the user id, a string as RFC 7519 wants),
`tenant` (the schema that issued it), `sid` (the session, i.e. the refresh
family), `jti`, `type` (access / refresh), `iat`, `exp`, and `iss` / `aud`
(checked on every decode). Access tokens also carry `email` and `roles`
(informational: permissions are checked on every request, not read from here), and
`amr` (how the user proved who they are, RFC 8176: ["pwd"], ["pwd", "otp"], ["ext"], ...)
and `auth_time` (epoch seconds of the latest proof: the sign-in, or the latest second
factor), both kept on the session so a refresh carries them on.

Tokens are signed with the active Ed25519 key of `apps.keys` (EdDSA, header
`kid`), whose public half is published at /.well-known/jwks.json so other
services verify them offline. They are decoded by PyJWT with the key the `kid`
names and that key's algorithm only; PyJWT checks the signature, `exp` / `nbf` /
`iat` with the configured leeway, the issuer and the audience, and then come
simplejwt's checks (an `exp`, a `jti` and the right `type`) with simplejwt's
messages. A token this process has verified before is answered from a memo
(`verified_tokens`, never looser than decoding again). The tenant, the session and
the user's revocation instant are checked by `authentication.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models import OuterRef
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts import verified_tokens
from apps.accounts.models import Session, User
from apps.core.tenancy import current_schema
from apps.keys import keyring
from apps.keys import services as keys_services
from apps.rbac.models import RoleAssignment


class InvalidToken(Exception):
    """The token is malformed, forged, expired, of the wrong type or from elsewhere."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    refresh_jti: str
    expires_in: int  # seconds until the access token expires
    # More for the client beside the tokens (e.g. "mfa_enrolment_required").
    notices: Mapping[str, Any] = field(default_factory=dict)

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            **self.notices,
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


def user_roles(user: User, *, held: list[str] | None = None) -> list[str]:
    """The names of the roles the user holds (anywhere), sorted, for the token's informational
    `roles` claim. Permissions are never read from the token: they are checked per request.

    `held`: the names already read with the user (`role_names()`); else they are read here."""
    from django_tenants.utils import get_public_schema_name

    if current_schema() == get_public_schema_name():
        # Platform operators: roles live in tenant schemas only.
        return ["operator"] if user.is_staff else []
    if held is None:
        held = list(RoleAssignment.objects.filter(user=user).values_list("role__name", flat=True))
    return sorted(set(held))


def role_names() -> ArraySubquery:
    """The names of the roles a user holds, as an expression on users (tenant schemas):
    `User.objects.annotate(held=role_names())`, then `user_roles(user, held=user.held)`."""
    return ArraySubquery(RoleAssignment.objects.filter(user=OuterRef("pk")).values("role__name"))


@dataclass(frozen=True)
class TokenPairDraft:
    """The claims of a token pair, not yet signed (see `token_pair_draft`)."""

    access_claims: dict[str, Any]
    refresh_claims: dict[str, Any]
    refresh_jti: str
    expires_in: int

    def sign(self) -> TokenPair:
        signer = keys_services.signer_get()
        return TokenPair(
            access_token=_sign(self.access_claims, signer),
            refresh_token=_sign(self.refresh_claims, signer),
            refresh_jti=self.refresh_jti,
            expires_in=self.expires_in,
        )


def token_pair_draft(
    *, user: User, session: Session, now: datetime | None = None, roles: list[str] | None = None
) -> TokenPairDraft:
    """The claims of a fresh access and refresh token for `session`, unsigned. `roles`: the
    `roles` claim when the caller has it (`user_roles`); else it is read here."""
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
    access["amr"] = list(session.amr or ["pwd"])
    access["auth_time"] = int((session.auth_time or session.created_at or now).timestamp())

    return TokenPairDraft(
        access_claims=dict(access.payload),
        refresh_claims=dict(refresh.payload),
        refresh_jti=str(refresh["jti"]),
        expires_in=int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    )


def token_pair_issue(
    *, user: User, session: Session, now: datetime | None = None, roles: list[str] | None = None
) -> TokenPair:
    """A fresh access token and refresh token for `session` (the caller stores the refresh jti).
    `roles`: the `roles` claim when the caller has it (`user_roles`); else read here."""
    return token_pair_draft(user=user, session=session, now=now, roles=roles).sign()


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


_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _in_its_one_encoding(raw: str) -> bool:
    """Whether `raw` is a compact JWS as we write it: three base64url segments without
    padding, the signature's unused last bits zero. PyJWT's base64 decoding accepts padding
    and ignores those bits, which would give one signed token several texts."""
    if _COMPACT.fullmatch(raw) is None:
        return False
    signature = raw.rpartition(".")[2]
    try:
        decoded = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        return False
    return _b64url(decoded).decode("ascii") == signature


def _pyjwt_payload(raw: str, verifier: _Verifier) -> dict[str, Any]:
    if not _in_its_one_encoding(raw):
        raise InvalidToken("Token is invalid")
    try:
        kid = jwt.get_unverified_header(raw).get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("Token is invalid")
        key = keyring.verifying_key_get(kid)
        if key is None or key.is_expired(time.time()):
            raise InvalidToken("Token is invalid")
        payload: dict[str, Any] = jwt.decode(
            raw,
            key.public_key,
            algorithms=[key.algorithm],
            audience=verifier.audience,
            issuer=verifier.issuer,
            leeway=verifier.leeway,
            options=verifier.options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("Token is expired") from None
    except (jwt.InvalidTokenError, ValueError):
        raise InvalidToken("Token is invalid") from None
    if "exp" not in payload:  # PyJWT checks `exp` only when present
        raise InvalidToken("Token has no 'exp' claim")
    verified_tokens.remember(raw, kid=kid, key=key, payload=payload)
    return payload


def _payload(raw: str, token_type: str) -> dict[str, Any]:
    """The verified payload of `raw`; InvalidToken with simplejwt's message otherwise.

    PyJWT decodes it with the key its `kid` names and that key's algorithm only (an
    unknown or retired kid, or another algorithm, is refused) and checks `exp` / `nbf` /
    `iat` with the leeway, the issuer and the audience; then come simplejwt's own checks.
    A token this process has already verified is answered by `verified_tokens`."""
    verifier = _verifier_get()
    if not isinstance(raw, str):
        raise InvalidToken("Token is invalid")
    payload = verified_tokens.payload_get(raw, leeway=verifier.leeway)
    if payload is None:
        payload = _pyjwt_payload(raw, verifier)
    # What simplejwt's Token.verify() adds (its `exp` check is in _pyjwt_payload).
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
