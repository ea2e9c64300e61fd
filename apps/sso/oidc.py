"""Talking to an OpenID provider: discovery, the authorization URL (PKCE S256), the code
exchange (authlib's requests client) and the ID token check (PyJWT, keys from the
provider's JWKS through PyJWKClient: cached, fetched again when a `kid` is unknown)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from django.conf import settings

_METADATA_KEYS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "id_token_signing_alg_values_supported",
    "code_challenge_methods_supported",
)
# Asymmetric only: HS256 would make the client secret a signing key.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class ProviderError(Exception):
    """A sign-in step failed; `reason` is the machine code recorded and shown to the client."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def url_acceptable(url: str) -> bool:
    """https; plain http only to this machine and only where SSO_ALLOW_LOOPBACK_HTTP is
    on (a provider run locally, as in the tests): otherwise a tenant admin could make
    the platform call services listening on its own loopback."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return settings.SSO_ALLOW_PRIVATE_ADDRESSES or not _private_address(parts.hostname)
    return parts.scheme == "http" and settings.SSO_ALLOW_LOOPBACK_HTTP and _loopback(parts.hostname)


def _private_address(host: str) -> bool:
    """Whether `host` is, or resolves to, an address inside the platform's own networks
    (loopback, private, link-local such as cloud metadata, reserved): a tenant admin must
    not make the platform fetch from there. A name that does not resolve is left to the
    fetch, which fails on its own."""
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            return True
    return False


def discovery_fetch(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked: its `issuer` must be exactly ours."""
    if not url_acceptable(issuer):
        raise ProviderError("issuer_invalid", "the issuer must be an https URL")
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.SSO_HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError):
        raise ProviderError("provider_unavailable", "discovery could not be fetched") from None
    if not isinstance(document, dict):
        raise ProviderError("discovery_invalid", "the discovery document is not an object")
    if document.get("issuer") != issuer:
        raise ProviderError("issuer_mismatch", "the discovery document names another issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(key)
        if not isinstance(value, str) or not url_acceptable(value):
            raise ProviderError("discovery_invalid", f"{key} is missing or not https")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise ProviderError("discovery_invalid", "the provider does not support PKCE S256")
    return {key: document[key] for key in _METADATA_KEYS if key in document}


def _session(
    *, client_id: str, client_secret: str, scopes: list[str], callback_uri: str
) -> OAuth2Session:
    return OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope=" ".join(scopes),
        redirect_uri=callback_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
        default_timeout=settings.SSO_HTTP_TIMEOUT_SECONDS,
    )


def authorization_url(
    *,
    metadata: dict[str, Any],
    client_id: str,
    scopes: list[str],
    callback_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    session = _session(
        client_id=client_id, client_secret="", scopes=scopes, callback_uri=callback_uri
    )
    url, _ = session.create_authorization_url(
        metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=code_verifier
    )
    return str(url)


def code_exchange(
    *,
    metadata: dict[str, Any],
    client_id: str,
    client_secret: str,
    scopes: list[str],
    callback_uri: str,
    code: str,
    code_verifier: str,
) -> str:
    """The ID token the provider gives for `code`."""
    session = _session(
        client_id=client_id, client_secret=client_secret, scopes=scopes, callback_uri=callback_uri
    )
    try:
        token = session.fetch_token(
            metadata["token_endpoint"],
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
        )
    except requests.RequestException:
        raise ProviderError(
            "provider_unavailable", "the token endpoint could not be reached"
        ) from None
    except (AuthlibBaseError, ValueError) as exc:
        # The provider refused (invalid_grant, invalid_client, ...): its error code only.
        error = getattr(exc, "error", None) or type(exc).__name__
        raise ProviderError("token_exchange_failed", str(error)[:100]) from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise ProviderError("token_exchange_failed", "no id_token in the response")
    return id_token


_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_lock = threading.Lock()


def _jwks_client(uri: str) -> jwt.PyJWKClient:
    with _jwks_lock:
        client = _jwks_clients.get(uri)
        if client is None:
            client = jwt.PyJWKClient(
                uri,
                cache_jwk_set=True,
                lifespan=settings.SSO_JWKS_CACHE_SECONDS,
                timeout=settings.SSO_HTTP_TIMEOUT_SECONDS,
                # An unknown kid fetches the set again at most this often: a flood of
                # forged kids does not become a flood of requests to the provider.
                cooldown_duration=settings.SSO_JWKS_REFETCH_COOLDOWN_SECONDS,
            )
            _jwks_clients[uri] = client
        return client


def id_token_validate(
    *, id_token: str, metadata: dict[str, Any], issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature, iss, aud, exp, iat and nonce are right."""
    try:
        # An unknown kid makes PyJWKClient fetch the key set again (the provider rotated).
        key = _jwks_client(metadata["jwks_uri"]).get_signing_key_from_jwt(id_token)
    except jwt.PyJWKClientConnectionError:
        raise ProviderError("provider_unavailable", "the JWKS could not be fetched") from None
    except jwt.PyJWKClientError:
        raise ProviderError(
            "id_token_invalid", "no key of the provider matches the token"
        ) from None
    except jwt.PyJWTError:
        raise ProviderError("id_token_invalid", "the token is malformed") from None
    allowed = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in _ALGORITHMS if alg in allowed]
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key.key,
            algorithms=algorithms,
            audience=client_id,
            issuer=issuer,
            leeway=settings.SSO_CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise ProviderError("id_token_invalid", "expired") from None
    except jwt.InvalidAudienceError:
        raise ProviderError("id_token_invalid", "wrong audience") from None
    except jwt.InvalidIssuerError:
        raise ProviderError("id_token_invalid", "wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise ProviderError("id_token_invalid", "bad signature") from None
    except jwt.ImmatureSignatureError:
        raise ProviderError("id_token_invalid", "issued in the future") from None
    except jwt.PyJWTError as exc:
        raise ProviderError("id_token_invalid", type(exc).__name__) from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise ProviderError("id_token_invalid", "wrong authorized party")
    if not nonce or claims.get("nonce") != nonce:
        raise ProviderError("id_token_invalid", "wrong nonce")
    return claims
