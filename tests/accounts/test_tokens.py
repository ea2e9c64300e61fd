"""The access / refresh token decoder against simplejwt's, which it replaced on the request path.

Every token below is decoded both ways; whatever simplejwt refused, ours refuses too
(and with simplejwt's message), and what it accepted ours accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts import tokens
from apps.accounts.tokens import InvalidToken, access_token_decode, refresh_token_decode

SCHEMA = "alpha"


@pytest.fixture(autouse=True)
def _schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "current_schema", lambda: SCHEMA)


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
    text = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _sign(
    claims: dict[str, Any],
    *,
    key: str | None = None,
    algorithm: str = "HS256",
    header: dict[str, Any] | None = None,
) -> str:
    """Signed by hand (PyJWT's encoder refuses some of the malformed claims tested here)."""
    header = header or {"alg": algorithm, "typ": "JWT"}
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    secret = (key or str(api_settings.SIGNING_KEY)).encode()
    mac = hmac.new(secret, signing_input, _DIGESTS[algorithm]).digest()
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _simplejwt_accepts(token_class: type[AccessToken] | type[RefreshToken], raw: str) -> bool:
    try:
        token_class(raw)  # type: ignore[arg-type]
    except TokenError:
        return False
    return True


def _ours_accepts(decode: Any, raw: str) -> bool:
    try:
        decode(raw)
    except InvalidToken:
        return False
    return True


def _bad_tokens() -> dict[str, str]:
    now = int(time.time())
    good = _claims()
    header, body, signature = _sign(good).split(".")
    return {
        "wrong key": _sign(good, key="another-key-that-is-long-enough-to-be-a-key-0000000"),
        "tampered payload": f"{header}.{_b64({**good, 'sub': '1'})}.{signature}",
        "signature of another token": f"{header}.{body}.{_sign(_claims(sub='8')).split('.')[2]}",
        "no signature": f"{header}.{body}.",
        "two segments": f"{header}.{body}",
        "four segments": f"{header}.{body}.{signature}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        "alg none, no typ": f"{_b64({'alg': 'none'})}.{body}.",
        "HS512 with the same key": _sign(good, algorithm="HS512"),
        "HS384 with the same key": _sign(good, algorithm="HS384"),
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
        "kid not a string": _sign(good, header={"alg": "HS256", "typ": "JWT", "kid": 1}),
        "alg none, signed": _sign(good, header={"alg": "none", "typ": "JWT"}),
        "payload not JSON": f"{header}.bm90IGpzb24.{signature}",
        "garbage": "not-a-token",
        "empty": "",
        "non-ascii": "ünïcode.ünïcode.ünïcode",
    }


@pytest.mark.parametrize("name", sorted(_bad_tokens()))
def test_every_token_simplejwt_refused_is_refused(name: str) -> None:
    raw = _bad_tokens()[name]
    assert not _simplejwt_accepts(AccessToken, raw), f"simplejwt accepts {name}"
    with pytest.raises(InvalidToken):
        access_token_decode(raw)


def test_the_messages_are_simplejwts() -> None:
    now = int(time.time())
    cases = {
        _sign(_claims(iat=now - 3600, exp=now - 1800)): "Token is expired",
        _sign(_claims(), key="another-key-that-is-long-enough-to-be-a-key-0000000"): (
            "Token is invalid"
        ),
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
        "with a kid header": _sign(_claims(), header={"alg": "HS256", "typ": "JWT", "kid": "k1"}),
        "headers in another order": _sign(_claims(), header={"typ": "JWT", "alg": "HS256"}),
        "no typ header": _sign(_claims(), header={"alg": "HS256"}),
        "issued by PyJWT": jwt.encode(_claims(), str(api_settings.SIGNING_KEY), algorithm="HS256"),
    }
    for name, raw in accepted.items():
        assert _simplejwt_accepts(AccessToken, raw), name
        claims = access_token_decode(raw)
        assert claims.raw == AccessToken(raw).payload, name  # type: ignore[arg-type]
        assert claims.user_id == 7 and claims.tenant == SCHEMA, name


def test_issued_pairs_decode_as_their_own_type_only() -> None:
    refresh = RefreshToken()
    access = AccessToken()
    for token in (refresh, access):
        token["sub"] = "7"
        token["tenant"] = SCHEMA
        token["sid"] = "s1"
    assert refresh_token_decode(str(refresh)).jti == refresh["jti"]
    assert access_token_decode(str(access)).jti == access["jti"]
    with pytest.raises(InvalidToken, match="wrong type"):
        access_token_decode(str(refresh))
    with pytest.raises(InvalidToken, match="wrong type"):
        refresh_token_decode(str(access))


def test_a_changed_signing_key_is_picked_up(settings: Any) -> None:
    raw = _sign(_claims())
    assert access_token_decode(raw).user_id == 7
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "x" * 64}
    with pytest.raises(InvalidToken):
        access_token_decode(raw)
    assert access_token_decode(_sign(_claims(), key="x" * 64)).user_id == 7


def test_not_text_is_invalid() -> None:
    with pytest.raises(InvalidToken):
        access_token_decode(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        access_token_decode(b"abc.def.ghi")  # type: ignore[arg-type]


def test_leeway_is_the_configured_one() -> None:
    assert tokens._verifier_get().leeway == timedelta(seconds=api_settings.LEEWAY).total_seconds()
    assert settings.SIMPLE_JWT["ALGORITHM"] == "HS256"  # the fast path's algorithm
    assert tokens._verifier_get().hmac_header is not None
