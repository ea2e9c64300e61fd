"""Talking to an OpenID provider: discovery, the authorization URL (PKCE S256), the code
exchange (authlib's requests client), the ID token check (PyJWT, keys from the
provider's JWKS through PyJWKClient: cached, fetched again when a `kid` is unknown) and
UserInfo (OIDC Core 5.3).

Every request to the provider goes through the outbound guard (apps.core.outbound):
https to public addresses, checked when connecting, unless SSO_ALLOW_LOOPBACK_HTTP /
SSO_ALLOW_PRIVATE_ADDRESSES say otherwise. A tenant admin chooses the issuer, so the
platform must not be made to call its own network through it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from django.conf import settings

from apps.core.outbound import (
    OutboundPolicy,
    OutboundRefused,
    OutboundSession,
    OutboundSessionMixin,
    url_check_resolved,
)

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


def _policy() -> OutboundPolicy:
    return OutboundPolicy(
        allow_loopback_http=settings.SSO_ALLOW_LOOPBACK_HTTP,
        allow_private_addresses=settings.SSO_ALLOW_PRIVATE_ADDRESSES,
    )


def url_problem(url: str) -> str | None:
    """Why the platform will not call `url`, or None: it must read unambiguously, be
    https (plain http only to this machine where SSO_ALLOW_LOOPBACK_HTTP is on) and
    resolve, to public addresses only unless SSO_ALLOW_PRIVATE_ADDRESSES is on. Checked
    when configuring; each connection is checked again (the name may resolve elsewhere
    by then)."""
    try:
        url_check_resolved(url, _policy())
    except OutboundRefused as exc:
        return str(exc)
    return None


def url_acceptable(url: str) -> bool:
    return url_problem(url) is None


def discovery_fetch(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked: its `issuer` must be exactly ours."""
    problem = url_problem(issuer)
    if problem:
        raise ProviderError("issuer_invalid", f"the issuer is not acceptable: {problem}")
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with OutboundSession(outbound_policy=_policy()) as session:
            response = session.get(url, timeout=settings.SSO_HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except OutboundRefused as exc:
        raise ProviderError("issuer_invalid", f"the issuer is not acceptable: {exc}") from None
    except (requests.RequestException, ValueError):
        raise ProviderError("provider_unavailable", "discovery could not be fetched") from None
    if not isinstance(document, dict):
        raise ProviderError("discovery_invalid", "the discovery document is not an object")
    if document.get("issuer") != issuer:
        raise ProviderError("issuer_mismatch", "the discovery document names another issuer")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        value = document.get(key)
        if key == "userinfo_endpoint" and value is None:
            continue  # optional: without it, only the ID token's claims are read
        if not isinstance(value, str):
            raise ProviderError("discovery_invalid", f"{key} is missing")
        problem = url_problem(value)
        if problem:
            raise ProviderError("discovery_invalid", f"{key} is not acceptable: {problem}")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise ProviderError("discovery_invalid", "the provider does not support PKCE S256")
    return {key: document[key] for key in _METADATA_KEYS if key in document}


class _OAuth2Session(OutboundSessionMixin, OAuth2Session):
    """authlib's client, its requests sent through the outbound guard."""


def _session(
    *, client_id: str, client_secret: str, scopes: list[str], callback_uri: str
) -> OAuth2Session:
    return _OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope=" ".join(scopes),
        redirect_uri=callback_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
        default_timeout=settings.SSO_HTTP_TIMEOUT_SECONDS,
        outbound_policy=_policy(),
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


@dataclass(frozen=True)
class TokenResponse:
    id_token: str
    access_token: str  # for UserInfo; empty if the provider gave none


def code_exchange(
    *,
    metadata: dict[str, Any],
    client_id: str,
    client_secret: str,
    scopes: list[str],
    callback_uri: str,
    code: str,
    code_verifier: str,
) -> TokenResponse:
    """The tokens the provider gives for `code`."""
    session = _session(
        client_id=client_id, client_secret=client_secret, scopes=scopes, callback_uri=callback_uri
    )
    try:
        with session:
            token = session.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
    except OutboundRefused as exc:
        raise ProviderError("address_not_allowed", str(exc)) from None
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
    access_token = token.get("access_token")
    return TokenResponse(
        id_token=id_token, access_token=access_token if isinstance(access_token, str) else ""
    )


class _JWKClient(jwt.PyJWKClient):
    """PyJWKClient (its cache and refetch cooldown) fetching through the outbound guard
    instead of urllib; like PyJWT's own fetch, redirects are not followed."""

    def fetch_data(self) -> Any:
        try:
            with OutboundSession(outbound_policy=_policy()) as session:
                response = session.get(
                    self.uri, headers=self.headers, timeout=self.timeout, allow_redirects=False
                )
            if response.status_code != 200:
                raise jwt.PyJWKClientConnectionError(
                    f"the JWKS answered HTTP {response.status_code}"
                )
            jwk_set = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise jwt.PyJWKClientConnectionError(
                f"the JWKS could not be fetched ({type(exc).__name__})"
            ) from None
        if not isinstance(jwk_set, dict):
            raise jwt.PyJWKClientError("The JWKS endpoint did not return a JSON object")
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(jwk_set)
        # As PyJWKClient.fetch_data does: the refetch cooldown counts from here.
        self._last_successful_fetch = time.monotonic()
        return jwk_set


_jwks_clients: dict[str, _JWKClient] = {}
_jwks_lock = threading.Lock()


def _jwks_client(uri: str) -> _JWKClient:
    with _jwks_lock:
        client = _jwks_clients.get(uri)
        if client is None:
            client = _JWKClient(
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
    except OutboundRefused as exc:
        raise ProviderError("address_not_allowed", str(exc)) from None
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


def userinfo_fetch(*, metadata: dict[str, Any], access_token: str, subject: str) -> dict[str, Any]:
    """The claims the UserInfo endpoint gives for `access_token`. Its `sub` must be the ID
    token's (OIDC Core 5.3.2), or none of them is used."""
    try:
        with OutboundSession(outbound_policy=_policy()) as session:
            response = session.get(
                metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                timeout=settings.SSO_HTTP_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
    except OutboundRefused as exc:
        raise ProviderError("address_not_allowed", str(exc)) from None
    except requests.RequestException:
        raise ProviderError(
            "provider_unavailable", "the UserInfo endpoint could not be reached"
        ) from None
    if response.status_code != 200:
        raise ProviderError("userinfo_failed", f"HTTP {response.status_code}")
    content_type = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if content_type == "application/jwt":
        raise ProviderError("userinfo_invalid", "signed UserInfo responses are not supported")
    try:
        claims = response.json()
    except ValueError:
        raise ProviderError("userinfo_invalid", "the response is not JSON") from None
    if not isinstance(claims, dict):
        raise ProviderError("userinfo_invalid", "the response is not an object")
    if claims.get("sub") != subject:
        raise ProviderError("userinfo_subject_mismatch", "UserInfo names another subject")
    return claims


def claims_merge(
    *, id_token_claims: dict[str, Any], userinfo: dict[str, Any], claim_email: str
) -> dict[str, Any]:
    """The ID token's claims, completed from UserInfo's: the signed ID token wins where
    both have a claim. `email_verified` vouches for one address, so it is taken only
    from a source that carries that same address."""
    merged = {**userinfo, **id_token_claims}
    merged.pop("email_verified", None)
    for source in (id_token_claims, userinfo):
        if "email_verified" in source and source.get(claim_email) == merged.get(claim_email):
            merged["email_verified"] = source["email_verified"]
            break
    return merged
