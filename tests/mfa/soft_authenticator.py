"""A software WebAuthn authenticator (and the browser around it), for tests.

Built from the specification with `cryptography` (EC P-256 keys, ES256 signatures) and
`cbor2`, not from py_webauthn, so the server's checks are exercised by independent code.
`create(options, origin)` and `get(options, origin)` take the JSON options the API hands
out and return what a browser's `PublicKeyCredential.toJSON()` sends back: `id`, `rawId`,
`type`, and `response` with base64url `clientDataJSON` and `attestationObject`
(registration) or `authenticatorData`, `signature` and `userHandle` (assertion).

Knobs for the attacks the tests play: `rp_id=` signs for another relying party than the
options name, `clone()` copies the keys and counters (a cloned authenticator),
`counter_step=0` never counts (as synced passkeys do).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# authenticatorData flags (WebAuthn §6.1)
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_AT = 0x40  # attested credential data included

# COSE (RFC 9053): key type EC2, algorithm ES256, curve P-256
COSE_KTY, COSE_ALG, COSE_CRV, COSE_X, COSE_Y = 1, 3, -1, -2, -3
COSE_KTY_EC2, COSE_ALG_ES256, COSE_CRV_P256 = 2, -7, 1


class AuthenticatorError(Exception):
    """What a browser would reject with a DOMException (no usable key, excluded key)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class StoredCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


def cose_public_key(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = private_key.public_key().public_numbers()
    return cbor2.dumps(
        {
            COSE_KTY: COSE_KTY_EC2,
            COSE_ALG: COSE_ALG_ES256,
            COSE_CRV: COSE_CRV_P256,
            COSE_X: numbers.x.to_bytes(32, "big"),
            COSE_Y: numbers.y.to_bytes(32, "big"),
        }
    )


def client_data(*, type_: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()


class SoftAuthenticator:
    def __init__(
        self,
        *,
        counter_step: int = 1,
        user_verified: bool = True,
        transports: tuple[str, ...] = ("usb",),
        aaguid: bytes = bytes(16),
    ) -> None:
        self.credentials: dict[bytes, StoredCredential] = {}
        self.counter_step = counter_step
        self.user_verified = user_verified
        self.transports = list(transports)
        self.aaguid = aaguid

    def clone(self) -> SoftAuthenticator:
        """Another authenticator with the same keys and counters (what an attacker who
        extracted the keys holds)."""
        return copy.deepcopy(self)

    def _flags(self, *extra: int) -> int:
        flags = FLAG_UP | (FLAG_UV if self.user_verified else 0)
        for flag in extra:
            flags |= flag
        return flags

    def create(self, options: dict[str, Any], origin: str, *, rp_id: str | None = None) -> dict:
        """navigator.credentials.create({publicKey: options}) on `origin`."""
        rp_id = rp_id or options["rp"].get("id") or origin.split("://", 1)[1].split(":")[0]
        if not any(p["alg"] == COSE_ALG_ES256 for p in options["pubKeyCredParams"]):
            raise AuthenticatorError("NotSupportedError: ES256 not offered")
        for excluded in options.get("excludeCredentials", []):
            held = self.credentials.get(b64url_decode(excluded["id"]))
            if held is not None and held.rp_id == rp_id:
                raise AuthenticatorError("InvalidStateError: this key is already registered")

        private_key = ec.generate_private_key(ec.SECP256R1())
        credential_id = os.urandom(32)
        stored = StoredCredential(
            credential_id=credential_id,
            private_key=private_key,
            rp_id=rp_id,
            user_handle=b64url_decode(options["user"]["id"]),
        )
        self.credentials[credential_id] = stored

        attested = (
            self.aaguid
            + struct.pack(">H", len(credential_id))
            + credential_id
            + cose_public_key(private_key)
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(FLAG_AT)])
            + struct.pack(">I", stored.sign_count)
            + attested
        )
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        data = client_data(type_="webauthn.create", challenge=options["challenge"], origin=origin)
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(data),
                "attestationObject": b64url(attestation_object),
                "transports": list(self.transports),
            },
        }

    def get(self, options: dict[str, Any], origin: str, *, rp_id: str | None = None) -> dict:
        """navigator.credentials.get({publicKey: options}) on `origin`: the first key this
        authenticator holds among `allowCredentials` (any of the RP's when empty)."""
        rp_id = rp_id or options.get("rpId") or origin.split("://", 1)[1].split(":")[0]
        allowed = [b64url_decode(c["id"]) for c in options.get("allowCredentials", [])]
        candidates = [
            stored
            for stored in self.credentials.values()
            if stored.rp_id == rp_id and (not allowed or stored.credential_id in allowed)
        ]
        if not candidates:
            raise AuthenticatorError("NotAllowedError: no key of this authenticator is allowed")
        stored = candidates[0]
        stored.sign_count += self.counter_step
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", stored.sign_count)
        )
        data = client_data(type_="webauthn.get", challenge=options["challenge"], origin=origin)
        signature = stored.private_key.sign(
            auth_data + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(stored.credential_id),
            "rawId": b64url(stored.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(stored.user_handle),
            },
        }
