"""The access / refresh token decoder against simplejwt's and PyJWT's, with our Ed25519 keys.

Every token below is decoded both ways: by simplejwt (its backend configured with the
signing key's public half, as a plain EdDSA verifier would be) and by ours. Whatever
simplejwt refuses, ours refuses too (and with simplejwt's message), and what it accepts
ours accepts; ours also refuses what only the key set can tell (unknown or retired kid).
The key set is built here, in process, so these tests need no database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time
from datetime import datetime, timedelta, tzinfo
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from apps.accounts import tokens, verified_tokens
from apps.accounts.tokens import InvalidToken, access_token_decode, refresh_token_decode
from apps.keys import keyring
from apps.keys.crypto import jwk_thumbprint

SCHEMA = "alpha"

ACTIVE = Ed25519PrivateKey.generate()
RETIRED = Ed25519PrivateKey.generate()  # its grace period has ended
STRANGER = Ed25519PrivateKey.generate()  # never ours
ACTIVE_KID = jwk_thumbprint(ACTIVE.public_key())
RETIRED_KID = jwk_thumbprint(RETIRED.public_key())
STRANGER_KID = jwk_thumbprint(STRANGER.public_key())


def _verifying(key: Ed25519PrivateKey, *, not_after: float | None) -> keyring.VerifyingKey:
    kid = jwk_thumbprint(key.public_key())
    return keyring.VerifyingKey(
        kid=kid,
        algorithm="EdDSA",
        public_key=key.public_key(),
        not_after=not_after,
        header=keyring.header_segment(algorithm="EdDSA", kid=kid),
    )


def _ring() -> keyring.Keyring:
    active = _verifying(ACTIVE, not_after=None)
    retired = _verifying(RETIRED, not_after=time.time() - 1)
    return keyring.Keyring(
        signer=keyring.Signer(
            kid=ACTIVE_KID, algorithm="EdDSA", private_key=ACTIVE, header=active.header
        ),
        verifying={key.kid: key for key in (active, retired)},
        loaded_at=time.monotonic(),
    )


def _pem(key: Any, *, private: bool) -> bytes:
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(autouse=True)
def _schema_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "current_schema", lambda: SCHEMA)
    ring = _ring()
    monkeypatch.setattr(keyring, "_keyring", ring)
    monkeypatch.setattr(
        keyring, "keyring_reload", lambda **kwargs: ring
    )  # an unknown kid: no DB here
    # simplejwt, the reference: a plain EdDSA verifier with the active key's public half.
    backend = TokenBackend(
        "EdDSA",
        signing_key=_pem(ACTIVE, private=True).decode(),
        verifying_key=_pem(ACTIVE.public_key(), private=False).decode(),
        audience=api_settings.AUDIENCE,
        issuer=api_settings.ISSUER,
        leeway=api_settings.LEEWAY,
    )
    monkeypatch.setattr(Token, "_token_backend", backend)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "type": "access",
        "exp": now + 600,
        "iat": now,
        "jti": "0123456789abcdef0123456789abcdef",
        "sub": "7",
        "tenant": SCHEMA,
        "sid": "3f1a4b9e-0000-4000-8000-000000000001",
        "email": "someone@alpha.test",
        "roles": ["member"],
        "aud": api_settings.AUDIENCE,
        "iss": api_settings.ISSUER,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not _DROP}


_DROP = object()


_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), sort_keys=isinstance(data, dict))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _sign(
    claims: dict[str, Any],
    *,
    key: Ed25519PrivateKey = ACTIVE,
    kid: str | None = None,
    header: dict[str, Any] | None = None,
    hmac_secret: bytes | None = None,
    algorithm: str = "EdDSA",
) -> str:
    """Signed by hand (PyJWT's encoder refuses some of the malformed claims tested here)."""
    if header is None:
        header = {"alg": algorithm, "kid": kid or jwk_thumbprint(key.public_key()), "typ": "JWT"}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    if hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input, _DIGESTS[algorithm]).digest()
    else:
        signature = key.sign(signing_input)
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _simplejwt_accepts(token_class: type[AccessToken] | type[RefreshToken], raw: str) -> bool:
    try:
        token_class(raw)  # type: ignore[arg-type]
    except TokenError:
        return False
    return True


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    good = _claims()
    header, body, signature = _sign(good).split(".")
    public_pem = _pem(ACTIVE.public_key(), private=False)
    raw_public = ACTIVE.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    signature_bytes = base64.urlsafe_b64decode(signature + "==")
    flipped_bytes = bytes([signature_bytes[0] ^ 1]) + signature_bytes[1:]
    flipped = base64.urlsafe_b64encode(flipped_bytes).rstrip(b"=").decode()
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    # The last character of an Ed25519 signature carries 2 bits; its other 4 must be zero.
    unused_bits = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    return {
        "another key, its own kid": _sign(good, key=STRANGER),
        "another key, our kid": _sign(good, key=STRANGER, kid=ACTIVE_KID),
        "tampered payload": f"{header}.{_b64({**good, 'sub': '1'})}.{signature}",
        "signature of another token": f"{header}.{body}.{_sign(_claims(sub='8')).split('.')[2]}",
        "signature with a flipped bit": f"{header}.{body}.{flipped}",
        "signature with padding": f"{header}.{body}.{signature}==",
        "signature with its unused bits set": f"{header}.{body}.{unused_bits}",
        "signature truncated": f"{header}.{body}.{signature[:-2]}",
        "no signature": f"{header}.{body}.",
        "two segments": f"{header}.{body}",
        "four segments": f"{header}.{body}.{signature}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        "alg none, our kid": f"{_b64({'alg': 'none', 'kid': ACTIVE_KID, 'typ': 'JWT'})}.{body}.",
        "alg none, no typ": f"{_b64({'alg': 'none'})}.{body}.",
        "HS256 keyed with the public key PEM": _sign(
            good, algorithm="HS256", kid=ACTIVE_KID, hmac_secret=public_pem
        ),
        "HS256 keyed with the raw public key": _sign(
            good, algorithm="HS256", kid=ACTIVE_KID, hmac_secret=raw_public
        ),
        "HS256 with SECRET_KEY": _sign(
            good, algorithm="HS256", kid=ACTIVE_KID, hmac_secret=settings.SECRET_KEY.encode()
        ),
        "ES256 header, our kid": _sign(good, header={"alg": "ES256", "kid": ACTIVE_KID}),
        "unknown kid": _sign(good, kid="not-a-kid-of-ours"),
        "retired kid": _sign(good, key=RETIRED),
        "no kid": _sign(good, header={"alg": "EdDSA", "typ": "JWT"}),
        "kid not a string": _sign(good, header={"alg": "EdDSA", "typ": "JWT", "kid": 1}),
        "crit header": _sign(good, header={"alg": "EdDSA", "kid": ACTIVE_KID, "crit": ["exp"]}),
        "expired": _sign(_claims(iat=now - 3600, exp=now - 1800)),
        "expired beyond the leeway": _sign(_claims(exp=now - int(api_settings.LEEWAY) - 2)),
        "exp not a number": _sign(_claims(exp="soon")),
        "no exp": _sign(_claims(exp=_DROP)),
        "issued in the future": _sign(_claims(iat=now + 600, exp=now + 1200)),
        "iat not a number": _sign(_claims(iat="now")),
        "not before the future": _sign(_claims(nbf=now + 600)),
        "wrong audience": _sign(_claims(aud="someone-else")),
        "audience list without ours": _sign(_claims(aud=["a", "b"])),
        "audience list with a number": _sign(_claims(aud=[api_settings.AUDIENCE, 3])),
        "no audience": _sign(_claims(aud=_DROP)),
        "empty audience": _sign(_claims(aud="")),
        "wrong issuer": _sign(_claims(iss="evil")),
        "issuer not a string": _sign(_claims(iss=["platform"])),
        "no issuer": _sign(_claims(iss=_DROP)),
        "refresh type": _sign(_claims(type="refresh")),
        "no type": _sign(_claims(type=_DROP)),
        "no jti": _sign(_claims(jti=_DROP)),
        "jti not a string": _sign(_claims(jti=12)),
        "sub not a string": _sign(_claims(sub=7)),
        "payload not an object": _sign([1]),  # type: ignore[arg-type]
        "payload not JSON": f"{header}.bm90IGpzb24.{signature}",
        "garbage": "not-a-token",
        "empty": "",
        "non-ascii": "ünïcode.ünïcode.ünïcode",
    }


# Refused by the key set alone: simplejwt, given one key and no kid handling, cannot tell;
# and a signature in a second encoding (PyJWT's base64 decoding accepts the padding and
# ignores the unused bits).
_ONLY_WE_REFUSE = {"unknown kid", "retired kid", "no kid", "kid not a string"}
_ONLY_WE_REFUSE |= {"signature with padding", "signature with its unused bits set"}


@pytest.mark.parametrize("name", sorted(_bad_tokens()))
def test_every_bad_token_is_refused(name: str) -> None:
    raw = _bad_tokens()[name]
    if name not in _ONLY_WE_REFUSE:
        assert not _simplejwt_accepts(AccessToken, raw), f"simplejwt accepts {name}"
    with pytest.raises(InvalidToken):
        access_token_decode(raw)


def test_the_key_set_cases_are_otherwise_good() -> None:
    # Then their refusal above comes from the kid, not from something else in them.
    good = _claims()
    assert _simplejwt_accepts(AccessToken, _sign(good, kid="not-a-kid-of-ours"))
    assert _simplejwt_accepts(AccessToken, _sign(good, header={"alg": "EdDSA", "typ": "JWT"}))
    retired = _verifying(RETIRED, not_after=None)
    assert jwt.decode(
        _sign(good, key=RETIRED),
        retired.public_key,
        algorithms=["EdDSA"],
        audience=api_settings.AUDIENCE,
        issuer=api_settings.ISSUER,
    )


def test_the_messages_are_simplejwts() -> None:
    now = int(time.time())
    cases = {
        _sign(_claims(iat=now - 3600, exp=now - 1800)): "Token is expired",
        _sign(_claims(), key=STRANGER, kid=ACTIVE_KID): "Token is invalid",
        _sign(_claims(), kid="not-a-kid-of-ours"): "Token is invalid",
        _sign(_claims(type="refresh")): "Token has wrong type",
        _sign(_claims(type=_DROP)): "Token has no type",
        _sign(_claims(jti=_DROP)): "Token has no id",
        _sign(_claims(exp=_DROP)): "Token has no 'exp' claim",
        _sign(_claims(tenant="beta")): "Token was not issued for this tenant",
        _sign(_claims(sid=_DROP)): "Token is missing required claims",
        _sign(_claims(sub="seven")): "Token is missing required claims",
    }
    for raw, message in cases.items():
        with pytest.raises(InvalidToken) as caught:
            access_token_decode(raw)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    "changes",
    [
        {"tenant": "beta"},
        {"tenant": _DROP},
        {"sub": _DROP},
        {"sid": _DROP},
        {"iat": _DROP},
    ],
)
def test_our_own_claims_are_required(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        access_token_decode(_sign(_claims(**changes)))


def test_what_simplejwt_accepts_is_accepted_with_the_same_claims() -> None:
    now = int(time.time())
    accepted = {
        "issued now": _sign(_claims()),
        "expired within the leeway": _sign(_claims(exp=now - 1)),
        "issued within the leeway ahead": _sign(_claims(iat=now + 2)),
        "audience in a list": _sign(_claims(aud=["other", api_settings.AUDIENCE])),
        "headers in another order": _sign(
            _claims(), header={"typ": "JWT", "kid": ACTIVE_KID, "alg": "EdDSA"}
        ),
        "no typ header": _sign(_claims(), header={"alg": "EdDSA", "kid": ACTIVE_KID}),
        "issued by PyJWT": jwt.encode(
            _claims(), ACTIVE, algorithm="EdDSA", headers={"kid": ACTIVE_KID}
        ),
    }
    for name, raw in accepted.items():
        assert _simplejwt_accepts(AccessToken, raw), name
        claims = access_token_decode(raw)
        assert claims.raw == AccessToken(raw).payload, name  # type: ignore[arg-type]
        assert claims.user_id == 7 and claims.tenant == SCHEMA, name


def test_the_header_we_write_is_the_one_pyjwt_writes() -> None:
    raw = _sign(_claims())
    by_pyjwt = jwt.encode(_claims(), ACTIVE, algorithm="EdDSA", headers={"kid": ACTIVE_KID})
    assert by_pyjwt.split(".")[0] == raw.split(".")[0]
    assert access_token_decode(raw).user_id == 7


def test_issued_pairs_are_signed_with_the_active_key_and_decode_as_their_own_type_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.utils import timezone

    from apps.accounts.models import Session, User

    monkeypatch.setattr(tokens, "user_roles", lambda user: ["member"])
    session = Session(expires_at=timezone.now() + timedelta(days=30))
    pair = tokens.token_pair_issue(user=User(id=7, email="a@alpha.test"), session=session)
    for raw in (pair.access_token, pair.refresh_token):
        assert jwt.get_unverified_header(raw) == {"alg": "EdDSA", "kid": ACTIVE_KID, "typ": "JWT"}
    assert refresh_token_decode(pair.refresh_token).jti == pair.refresh_jti
    assert access_token_decode(pair.access_token).user_id == 7
    assert _simplejwt_accepts(AccessToken, pair.access_token)
    with pytest.raises(InvalidToken, match="wrong type"):
        access_token_decode(pair.refresh_token)
    with pytest.raises(InvalidToken, match="wrong type"):
        refresh_token_decode(pair.access_token)


def test_a_key_past_its_grace_is_refused_even_while_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _sign(_claims())
    assert access_token_decode(raw).user_id == 7
    ring = keyring.keyring_get()
    ending = _verifying(ACTIVE, not_after=time.time() - 0.001)
    monkeypatch.setattr(
        keyring,
        "_keyring",
        keyring.Keyring(
            signer=ring.signer,
            verifying={ACTIVE_KID: ending},
            loaded_at=ring.loaded_at,
        ),
    )
    with pytest.raises(InvalidToken):
        access_token_decode(raw)


def test_not_text_is_invalid() -> None:
    with pytest.raises(InvalidToken):
        access_token_decode(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        access_token_decode(b"abc.def.ghi")  # type: ignore[arg-type]


def test_leeway_is_the_configured_one() -> None:
    assert tokens._verifier_get().leeway == timedelta(seconds=api_settings.LEEWAY).total_seconds()
    assert settings.SIMPLE_JWT["ALGORITHM"] == "EdDSA"


def test_a_remembered_token_is_refused_once_its_key_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = _sign(_claims())
    first = access_token_decode(raw)
    assert raw in verified_tokens._verified
    first.raw["sub"] = "changed by a caller"
    assert access_token_decode(raw).raw["sub"] == "7"  # a copy each time

    # The key set reloaded without the key (retired elsewhere): the memo no longer counts.
    without = keyring.Keyring(signer=None, loaded_at=time.monotonic())
    monkeypatch.setattr(keyring, "_keyring", without)
    monkeypatch.setattr(keyring, "keyring_reload", lambda **kwargs: without)
    with pytest.raises(InvalidToken):
        access_token_decode(raw)


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    raw = _sign(_claims(iat=int(now), exp=int(now) + 60))
    assert access_token_decode(raw).user_id == 7
    later = now + 60 + api_settings.LEEWAY + 1

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(later, tz)

    monkeypatch.setattr(tokens.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)  # PyJWT's clock
    with pytest.raises(InvalidToken, match="expired"):
        access_token_decode(raw)
