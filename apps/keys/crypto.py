"""Key pairs, their JWK form, and the encryption of private keys at rest.

Private keys are stored as Fernet tokens. The Fernet keys are derived (HKDF-SHA256)
from JWT_KEY_ENCRYPTION_KEYS when set, else from SECRET_KEY and SECRET_KEY_FALLBACKS;
the first encrypts, all decrypt (MultiFernet), so the secret can be rotated.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "EdDSA"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def keys_for(purpose: bytes) -> list[bytes]:
    """32-byte keys for one purpose (the HKDF `info`), derived from JWT_KEY_ENCRYPTION_KEYS
    when set, else from SECRET_KEY and its fallbacks; the current one first."""
    secrets: list[str] = [str(secret) for secret in settings.JWT_KEY_ENCRYPTION_KEYS] or [
        str(secret) for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    ]
    if not secrets or not secrets[0]:
        raise ImproperlyConfigured(
            "Set JWT_KEY_ENCRYPTION_KEYS or SECRET_KEY to store secrets at rest."
        )
    return [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())
        for secret in secrets
    ]


def fernet_for(purpose: bytes) -> MultiFernet:
    """Fernet keys for one purpose (`keys_for`): the first encrypts, all decrypt."""
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys_for(purpose)])


def _fernet() -> MultiFernet:
    return fernet_for(b"platform.keys.signing-key")


def private_key_encrypt(private_key: Ed25519PrivateKey) -> str:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _fernet().encrypt(pem).decode("ascii")


def private_key_decrypt(token: str) -> Ed25519PrivateKey:
    try:
        pem = _fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise ImproperlyConfigured(
            "A signing key cannot be decrypted: JWT_KEY_ENCRYPTION_KEYS / SECRET_KEY changed "
            "without keeping the old value (add it as a fallback, or run rotate_signing_key)."
        ) from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("A stored signing key is not an Ed25519 key.")
    return key


def public_key_load(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ImproperlyConfigured("A stored public key is not an Ed25519 key.")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_jwk(public_key: Ed25519PublicKey, *, kid: str | None = None) -> dict[str, Any]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    if kid is not None:
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return jwk


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace."""
    canonical = json.dumps(public_jwk(public_key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())
