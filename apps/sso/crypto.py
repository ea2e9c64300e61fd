"""Client secrets encrypted at rest (Fernet), keyed by SSO_ENCRYPTION_KEY or derived from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.SSO_ENCRYPTION_KEY
    if not key:
        # Derived, and bound to this purpose: the raw SECRET_KEY is never a Fernet key itself.
        digest = hashlib.sha256(f"sso-client-secret:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def secret_encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # The key changed: the provider must be given its secret again.
        return ""
