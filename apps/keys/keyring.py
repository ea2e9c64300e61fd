"""The signing keys as loaded objects, cached in process so a request costs no query.

The whole set (the key that signs, and every key still verifying) is read from the
public schema at most once per SIGNING_KEYS_CACHE_SECONDS when a token is issued,
and when a token names a kid this process does not know (at most once a second, so
made-up kids cannot turn into a flood of queries). A key past its `not_after` is
refused at decode time from the clock, whatever the cache holds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.core.tenancy import public_schema
from apps.keys.crypto import b64url, private_key_decrypt, public_jwk, public_key_load
from apps.keys.models import SigningKey

logger = structlog.get_logger("apps.keys.keyring")

_UNKNOWN_KID_RELOAD_SECONDS = 1.0


def header_segment(*, algorithm: str, kid: str) -> bytes:
    """The header segment of the tokens a key signs, exactly as PyJWT writes it."""
    header = json.dumps({"alg": algorithm, "kid": kid, "typ": "JWT"}, separators=(",", ":"))
    return b64url(header.encode()).encode("ascii")


@dataclass(frozen=True)
class VerifyingKey:
    kid: str
    algorithm: str
    public_key: Ed25519PublicKey
    not_after: float | None  # epoch seconds; tokens are refused from then
    header: bytes

    def is_expired(self, now: float) -> bool:
        return self.not_after is not None and now >= self.not_after

    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.public_key, kid=self.kid)


@dataclass(frozen=True)
class Signer:
    kid: str
    algorithm: str
    private_key: Ed25519PrivateKey
    header: bytes


@dataclass(frozen=True)
class Keyring:
    signer: Signer | None
    verifying: dict[str, VerifyingKey] = field(default_factory=dict)
    loaded_at: float = 0.0


_lock = threading.Lock()
_keyring: Keyring | None = None


def _load() -> Keyring:
    now = timezone.now()
    with schema_context(public_schema()):
        rows = list(
            SigningKey.objects.filter(retired_at=None).filter(
                Q(not_after=None) | Q(not_after__gt=now)
            )
        )
    signer = None
    verifying: dict[str, VerifyingKey] = {}
    for row in rows:
        key = VerifyingKey(
            kid=row.kid,
            algorithm=row.algorithm,
            public_key=public_key_load(row.public_key),
            not_after=row.not_after.timestamp() if row.not_after else None,
            header=header_segment(algorithm=row.algorithm, kid=row.kid),
        )
        verifying[row.kid] = key
        if row.is_signing and row.private_key_encrypted:
            try:
                private_key = private_key_decrypt(row.private_key_encrypted)
            except ImproperlyConfigured:
                # Tokens still verify; issuing fails with the reason (keys.services.signer_get).
                logger.error("signing_key_undecryptable", kid=row.kid)
                continue
            signer = Signer(
                kid=row.kid, algorithm=row.algorithm, private_key=private_key, header=key.header
            )
    return Keyring(
        signer=signer,
        verifying=verifying,
        loaded_at=time.monotonic(),
    )


def keyring_reload(*, remember: bool = True) -> Keyring:
    global _keyring
    with _lock:
        loaded = _load()
        if remember:
            _keyring = loaded
        return loaded


def keyring_get() -> Keyring:
    return _keyring if _keyring is not None else keyring_reload()


def keyring_reset(**kwargs: Any) -> None:
    global _keyring
    _keyring = None


def keyring_fresh() -> Keyring:
    """The keyring, read again when older than SIGNING_KEYS_CACHE_SECONDS."""
    ring = _keyring
    if ring is None or time.monotonic() - ring.loaded_at >= settings.SIGNING_KEYS_CACHE_SECONDS:
        ring = keyring_reload()
    return ring


def verifying_key_get(kid: str) -> VerifyingKey | None:
    ring = keyring_get()
    key = ring.verifying.get(kid)
    if key is None and time.monotonic() - ring.loaded_at >= _UNKNOWN_KID_RELOAD_SECONDS:
        key = keyring_reload().verifying.get(kid)
    return key


def jwks() -> dict[str, Any]:
    """Every key that still verifies, as a JWK Set."""
    now = time.time()
    ring = keyring_get()
    return {"keys": [key.jwk() for key in ring.verifying.values() if not key.is_expired(now)]}


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECRET_KEY", "JWT_KEY_ENCRYPTION_KEYS", "SIMPLE_JWT"):
        keyring_reset()


setting_changed.connect(_settings_changed, dispatch_uid="apps.keys.keyring.settings_changed")
