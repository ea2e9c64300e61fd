"""TOTP secrets encrypted at rest, recovery codes and sign-in tokens hashed.

Keys: derived (HKDF-SHA256, an `info` per purpose) from the secrets that encrypt the
token signing keys (apps/keys/crypto.py: JWT_KEY_ENCRYPTION_KEYS, else SECRET_KEY and
SECRET_KEY_FALLBACKS), so rotating them works the same way: the first one writes, every one
is tried when reading.

TOTP secrets: Fernet (MultiFernet over those keys).

Recovery codes: HMAC-SHA256, looked up under every key. Not a slow password hash, on
purpose: a code is about 50 random bits, not a guessable password, so a slow hash adds
nothing against an offline guess (and without the key the hashes cannot even be tested),
while a keyed hash lets a code be found with one indexed lookup (ten Argon2 checks per
attempt would cost the server half a second and make recovery codes a way to load it).
The per-account rate limit bounds online guessing.

The sign-in challenge's token: 256 random bits, stored as its plain SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured

from apps.keys.crypto import fernet_for, keys_for

_SECRET_PURPOSE = b"platform.mfa.totp-secret"
_RECOVERY_PURPOSE = b"platform.mfa.recovery-code"
# Recovery codes: 10 characters of this alphabet (no 0/o, 1/l/i), shown as two groups of 5.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10


def secret_encrypt(secret: str) -> str:
    return fernet_for(_SECRET_PURPOSE).encrypt(secret.encode("ascii")).decode("ascii")


def secret_decrypt(token: str) -> str:
    try:
        return fernet_for(_SECRET_PURPOSE).decrypt(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise ImproperlyConfigured(
            "A TOTP secret cannot be decrypted: JWT_KEY_ENCRYPTION_KEYS / SECRET_KEY changed "
            "without keeping the old value as a fallback."
        ) from None


def _recovery_keys() -> list[bytes]:
    return keys_for(_RECOVERY_PURPOSE)


def recovery_code_normalize(code: str) -> str:
    """What the user typed, as it was generated: no spaces or dashes, lower case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def recovery_code_hash(code: str) -> str:
    """The hash a new code is stored under (the current SECRET_KEY's)."""
    return recovery_code_hashes(code)[0]


def recovery_code_hashes(code: str) -> list[str]:
    """Every hash `code` may be stored under (current key first, then the fallbacks')."""
    normalized = recovery_code_normalize(code).encode()
    return [hmac.new(key, normalized, hashlib.sha256).hexdigest() for key in _recovery_keys()]


def recovery_code_generate() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def challenge_token_generate() -> tuple[str, str]:
    """A new sign-in challenge token and the hash it is stored under."""
    token = secrets.token_urlsafe(32)
    return token, challenge_token_hash(token)


def challenge_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
