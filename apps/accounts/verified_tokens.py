"""Tokens whose signature this process has verified: a per-process memo for decoding.

The same access token comes back on every request of its client, and PyJWT's decode
(the signature above all) is the larger part of such a request's authentication. So
`apps.accounts.tokens` remembers each token PyJWT accepted, by its whole text, with the
key object that verified it and its payload. The memo answers only for that very text,
while the key its `kid` names is still that same, unexpired key object (a reloaded or
retired key set has new objects) and while the token has not expired (PyJWT's rule:
`exp` more than the leeway ago). Its other claims cannot change with time once PyJWT
accepted them. Anything else goes back to PyJWT. So the memo is never looser than
decoding again, and the session and the user's revocation are still checked on every
request after it (`authentication.py`).
"""

from __future__ import annotations

import time
from typing import Any

from apps.keys import keyring

MAX_ENTRIES = 2048  # the oldest go first

_verified: dict[str, tuple[str, keyring.VerifyingKey, dict[str, Any]]] = {}


def payload_get(raw: str, *, leeway: float) -> dict[str, Any] | None:
    """A copy of the payload of `raw` if this process verified it and it is still good."""
    known = _verified.get(raw)
    if known is None:
        return None
    kid, key, payload = known
    now = time.time()
    if keyring.verifying_key_get(kid) is not key or key.is_expired(now):
        return None
    if int(payload["exp"]) <= now - leeway:
        return None  # PyJWT says why
    return dict(payload)


def remember(raw: str, *, kid: str, key: keyring.VerifyingKey, payload: dict[str, Any]) -> None:
    """`raw` was verified with `key` (PyJWT accepted it, `exp` included)."""
    if len(_verified) >= MAX_ENTRIES:
        try:
            del _verified[next(iter(_verified))]
        except (KeyError, RuntimeError, StopIteration):  # another thread got there first
            pass
    _verified[raw] = (kid, key, dict(payload))
