"""The WebAuthn ceremonies (registration and assertion) on py_webauthn: no models, no HTTP.

apps/mfa/webauthn_flows.py wires them into enrolment and sign-in. What is decided here:

- Attestation "none": the platform trusts a key by its owner having enrolled it while
  signed in, not by its make, so no vendor certificates are kept (an authenticator that
  sends a self or packed attestation anyway is still checked by the library).
- User verification "preferred": the password was the first factor; a PIN or biometric
  on top is welcome, not required (a plain U2F key has none).
- Resident keys "discouraged": the key is a second factor, found by the credential ids
  the server lists, so it need not use up one of a security key's few discoverable slots.
- A sign count that does not grow past the stored one (when either is non-zero) is
  refused: the key was cloned, or the assertion replayed. Authenticators that always
  report 0 (synced passkeys) are accepted; their replays are stopped by the single-use
  challenge instead.

Every failure is one of the platform's errors with a message for the person at the key:
registration raises ValidationError (the enrolment is refused, nothing is stored),
assertion raises UnauthorizedError. Malformed input never escapes as another exception.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from apps.core.errors import UnauthorizedError, ValidationError

# How long the browser lets the person find and touch their key (a hint to the browser;
# the server's own limit is the lifetime of the challenge it keeps).
CEREMONY_TIMEOUT_SECONDS = 300
# WebAuthn Level 3: a credential id is at most 1023 bytes.
MAX_CREDENTIAL_ID_BYTES = 1023
# What the library or the bytes it parses (base64url, CBOR, COSE, DER, JSON) raise on
# hostile input besides its own WebAuthnException.
_MALFORMED = (
    WebAuthnException,
    binascii.Error,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    UnicodeError,
)
_TRANSPORTS = frozenset(transport.value for transport in AuthenticatorTransport)

REGISTRATION_FAILED = "The security key's registration could not be verified"
ASSERTION_FAILED = "The security key's answer could not be verified"


@dataclass(frozen=True)
class RegisteredCredential:
    credential_id: bytes
    public_key: bytes  # the COSE key, as the authenticator sent it
    sign_count: int
    transports: list[str]


def _reason(exc: BaseException) -> str:
    """The library's reason, short and without its pointer to `__cause__`; a generic one
    for what only a malformed credential raises."""
    if isinstance(exc, WebAuthnException) and str(exc):
        return str(exc).replace(" See __cause__ for more info", "").rstrip(".")
    return "The credential is malformed"


def _descriptors(
    credential_ids: list[bytes], transports: Mapping[bytes, list[str]] | None
) -> list[PublicKeyCredentialDescriptor]:
    transports = transports or {}
    return [
        PublicKeyCredentialDescriptor(
            id=credential_id,
            transports=[
                AuthenticatorTransport(t)
                for t in transports.get(credential_id, [])
                if t in _TRANSPORTS
            ]
            or None,
        )
        for credential_id in credential_ids
    ]


def _challenge_bytes(challenge: str) -> bytes | None:
    """The kept challenge; None when there is none (an empty one would match a client's
    empty challenge)."""
    try:
        decoded = base64url_to_bytes(challenge) if challenge else b""
    except (binascii.Error, ValueError):
        decoded = b""
    return decoded or None


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    exclude_credential_ids: list[bytes],
    exclude_transports: Mapping[bytes, list[str]] | None = None,
) -> tuple[dict[str, Any], str]:
    """PublicKeyCredentialCreationOptions as JSON (what `navigator.credentials.create()`
    takes, with base64url for the bytes) and its challenge (base64url) for the server to
    keep. `exclude_credential_ids`: the user's keys already enrolled, so the same key is
    not enrolled twice."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name or user_name,
        timeout=CEREMONY_TIMEOUT_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(exclude_credential_ids, exclude_transports),
    )
    return options_to_json_dict(options), bytes_to_base64url(options.challenge)


def _transports_of(credential: Mapping[str, Any]) -> list[str]:
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, Mapping) else None
    if not isinstance(listed, list):
        return []
    return sorted({t for t in listed if isinstance(t, str) and t in _TRANSPORTS})


def registration_verify(
    *, credential: dict[str, Any], expected_challenge: str, rp_id: str, origins: list[str]
) -> RegisteredCredential:
    """Check what `navigator.credentials.create()` returned (its JSON form) against the
    challenge the server kept, its RP id and origins. ValidationError when it does not
    check out."""
    if not isinstance(credential, dict):
        raise ValidationError(
            f"{REGISTRATION_FAILED}: the credential must be a JSON object.",
            details={"credential": ["Must be a JSON object."]},
        )
    challenge = _challenge_bytes(expected_challenge)
    if challenge is None:
        raise ValidationError(
            f"{REGISTRATION_FAILED}: no registration is pending; start again.",
            details={"credential": ["No registration is pending."]},
        )
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=list(origins),
            require_user_verification=False,
        )
    except _MALFORMED as exc:
        reason = _reason(exc)
        raise ValidationError(
            f"{REGISTRATION_FAILED}: {reason}.", details={"credential": [reason]}
        ) from None
    if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        raise ValidationError(
            f"{REGISTRATION_FAILED}: the credential id is too long.",
            details={"credential": ["The credential id is too long."]},
        )
    return RegisteredCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_transports_of(credential),
    )


def authentication_options(
    *,
    rp_id: str,
    allow_credential_ids: list[bytes],
    transports: Mapping[bytes, list[str]] | None = None,
) -> tuple[dict[str, Any], str]:
    """PublicKeyCredentialRequestOptions as JSON (for `navigator.credentials.get()`),
    listing the user's keys, and the challenge (base64url) for the server to keep."""
    options = generate_authentication_options(
        rp_id=rp_id,
        timeout=CEREMONY_TIMEOUT_SECONDS * 1000,
        allow_credentials=_descriptors(allow_credential_ids, transports),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json_dict(options), bytes_to_base64url(options.challenge)


def _user_handle_of(credential: Mapping[str, Any]) -> bytes | None:
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, Mapping) else None
    if not isinstance(handle, str) or not handle:
        return None
    try:
        return base64url_to_bytes(handle)
    except (binascii.Error, ValueError):
        return b""


def authentication_verify(
    *,
    credential: dict[str, Any],
    expected_challenge: str,
    rp_id: str,
    origins: list[str],
    public_key: bytes,
    sign_count: int,
    user_handle: bytes | None = None,
) -> int:
    """Check what `navigator.credentials.get()` returned against the challenge the server
    kept and the stored key (`public_key`, `sign_count`); the new sign count when it checks
    out, else UnauthorizedError. With `user_handle`, an assertion naming another user
    (a discoverable key's `userHandle`) is refused too: a consistency check only, since the
    signature does not cover the handle; what ties the key to the user is the caller
    finding `public_key` among that user's own keys."""
    if not isinstance(credential, dict):
        raise UnauthorizedError(f"{ASSERTION_FAILED}: the credential must be a JSON object.")
    challenge = _challenge_bytes(expected_challenge)
    if challenge is None:
        raise UnauthorizedError(f"{ASSERTION_FAILED}: ask for new options and try again.")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=list(origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=False,
        )
    except _MALFORMED as exc:
        raise UnauthorizedError(f"{ASSERTION_FAILED}: {_reason(exc)}.") from None
    if user_handle is not None:
        answered = _user_handle_of(credential)
        if answered is not None and answered != user_handle:
            raise UnauthorizedError(f"{ASSERTION_FAILED}: the key belongs to another account.")
    return int(verified.new_sign_count)


def credential_id_of(credential: dict[str, Any]) -> bytes:
    """The credential id a client's credential names (its `rawId`), to find the stored key
    by; ValidationError when there is none."""
    raw_id = credential.get("rawId") if isinstance(credential, dict) else None
    if isinstance(raw_id, str) and raw_id:
        try:
            decoded = base64url_to_bytes(raw_id)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded and len(decoded) <= MAX_CREDENTIAL_ID_BYTES:
            return decoded
    raise ValidationError.for_field(
        "credential", "A WebAuthn credential with its rawId (base64url) is required."
    )
