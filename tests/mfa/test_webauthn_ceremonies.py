"""The WebAuthn ceremonies (apps/mfa/webauthn.py) against a software authenticator: a key
registers and signs in, and every way an answer can be wrong is refused with the
platform's errors (never another exception)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webauthn.helpers import decode_credential_public_key

from apps.core.errors import UnauthorizedError, ValidationError
from apps.mfa.webauthn import (
    RegisteredCredential,
    authentication_options,
    authentication_verify,
    credential_id_of,
    registration_options,
    registration_verify,
)
from tests.mfa.soft_authenticator import (
    AuthenticatorError,
    SoftAuthenticator,
    b64url,
    b64url_decode,
)

# The autouse fixtures reach Redis, whose first connection reads the database.
pytestmark = pytest.mark.django_db

RP_ID = "acme.example.com"
ORIGIN = "https://acme.example.com"
HANDLE = b"\x01" * 32


def _register(
    key: SoftAuthenticator, *, exclude: list[bytes] | None = None
) -> RegisteredCredential:
    options, challenge = registration_options(
        rp_id=RP_ID,
        rp_name="Acme",
        user_handle=HANDLE,
        user_name="ada@acme.example.com",
        display_name="Ada Lovelace",
        exclude_credential_ids=exclude or [],
    )
    return registration_verify(
        credential=key.create(options, ORIGIN),
        expected_challenge=challenge,
        rp_id=RP_ID,
        origins=[ORIGIN],
    )


def _sign_in(
    key: SoftAuthenticator, stored: RegisteredCredential, *, sign_count: int | None = None
) -> int:
    options, challenge = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[stored.credential_id]
    )
    return authentication_verify(
        credential=key.get(options, ORIGIN),
        expected_challenge=challenge,
        rp_id=RP_ID,
        origins=[ORIGIN],
        public_key=stored.public_key,
        sign_count=stored.sign_count if sign_count is None else sign_count,
    )


# ------------------------------------------------------------------ options


def test_registration_options_ask_for_no_attestation_and_preferred_verification() -> None:
    excluded = b"\x07" * 16
    options, challenge = registration_options(
        rp_id=RP_ID,
        rp_name="Acme",
        user_handle=HANDLE,
        user_name="ada@acme.example.com",
        display_name="Ada Lovelace",
        exclude_credential_ids=[excluded],
        exclude_transports={excluded: ["usb", "carrier-pigeon"]},
    )
    json.dumps(options)  # JSON-ready as it is
    assert options["rp"] == {"id": RP_ID, "name": "Acme"}
    assert options["user"] == {
        "id": b64url(HANDLE),
        "name": "ada@acme.example.com",
        "displayName": "Ada Lovelace",
    }
    assert options["challenge"] == challenge
    assert len(b64url_decode(challenge)) >= 16
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert options["excludeCredentials"] == [
        {"id": b64url(excluded), "type": "public-key", "transports": ["usb"]}
    ]


def test_each_ceremony_gets_a_fresh_challenge() -> None:
    _, first = authentication_options(rp_id=RP_ID, allow_credential_ids=[b"k"])
    options, second = authentication_options(rp_id=RP_ID, allow_credential_ids=[b"k"])
    assert first != second
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "preferred"
    assert options["allowCredentials"] == [{"id": b64url(b"k"), "type": "public-key"}]


# ------------------------------------------------------------------ round trip


def test_a_key_registers_and_then_signs_in_with_a_growing_count() -> None:
    key = SoftAuthenticator(transports=("usb", "nfc"))
    stored = _register(key)

    assert stored.credential_id == next(iter(key.credentials))
    assert decode_credential_public_key(stored.public_key).alg == -7
    assert stored.sign_count == 0
    assert stored.transports == ["nfc", "usb"]

    assert _sign_in(key, stored) == 1
    assert _sign_in(key, stored, sign_count=1) == 2


def test_the_same_key_cannot_be_registered_twice() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    with pytest.raises(AuthenticatorError, match="InvalidStateError"):
        _register(key, exclude=[stored.credential_id])


def test_a_key_that_never_counts_is_accepted_each_time() -> None:
    # Synced passkeys report 0 forever; only a count that goes backwards or stands
    # still above 0 means a clone.
    key = SoftAuthenticator(counter_step=0)
    stored = _register(key)
    assert _sign_in(key, stored) == 0
    assert _sign_in(key, stored) == 0


def test_a_key_without_user_verification_is_accepted() -> None:
    key = SoftAuthenticator(user_verified=False)
    stored = _register(key)
    assert _sign_in(key, stored) == 1


def test_credential_id_of_reads_the_raw_id() -> None:
    key = SoftAuthenticator()
    options, _ = registration_options(
        rp_id=RP_ID,
        rp_name="Acme",
        user_handle=HANDLE,
        user_name="ada",
        display_name="",
        exclude_credential_ids=[],
    )
    credential = key.create(options, ORIGIN)
    assert credential_id_of(credential) == next(iter(key.credentials))
    bad: list[Any] = [{}, {"rawId": ""}, {"rawId": 7}, {"rawId": "!!"}, {"rawId": "A" * 2000}, []]
    for credential in bad:
        with pytest.raises(ValidationError):
            credential_id_of(credential)


# ------------------------------------------------------------------ registration refused


def _registration(**changes: Any) -> tuple[dict, dict[str, Any]]:
    key = SoftAuthenticator()
    options, challenge = registration_options(
        rp_id=RP_ID,
        rp_name="Acme",
        user_handle=HANDLE,
        user_name="ada",
        display_name="Ada",
        exclude_credential_ids=[],
    )
    credential = key.create(
        options, changes.pop("origin", ORIGIN), rp_id=changes.pop("authenticator_rp_id", None)
    )
    expected = {"expected_challenge": challenge, "rp_id": RP_ID, "origins": [ORIGIN]}
    expected.update(changes)
    return credential, expected


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"origin": "https://evil.example.com"}, "origin"),
        ({"authenticator_rp_id": "evil.example.com"}, "RP ID"),
        ({"rp_id": "other.example.com"}, "RP ID"),
        ({"expected_challenge": b64url(b"another challenge of the server")}, "challenge"),
        ({"expected_challenge": ""}, "no registration is pending"),
    ],
    ids=[
        "wrong origin",
        "key signs for another rp",
        "server expects another rp",
        "wrong challenge",
        "no challenge",
    ],
)
def test_a_registration_that_does_not_match_is_refused(changes: dict, reason: str) -> None:
    credential, expected = _registration(**changes)
    with pytest.raises(ValidationError, match=reason) as caught:
        registration_verify(credential=credential, **expected)
    assert caught.value.details["credential"]


def test_a_registration_from_an_http_origin_is_refused_unless_listed() -> None:
    credential, expected = _registration(origin="http://acme.example.com")
    with pytest.raises(ValidationError):
        registration_verify(credential=credential, **expected)
    credential, expected = _registration(origin="http://acme.localhost:8000")
    expected["origins"] = [ORIGIN, "http://acme.localhost:8000"]
    assert registration_verify(credential=credential, **expected).sign_count == 0


def test_an_assertion_is_not_accepted_as_a_registration() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    options, challenge = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[stored.credential_id]
    )
    assertion = key.get(options, ORIGIN)
    assertion["response"]["attestationObject"] = assertion["response"]["authenticatorData"]
    with pytest.raises(ValidationError, match=r"webauthn\.get"):
        registration_verify(
            credential=assertion, expected_challenge=challenge, rp_id=RP_ID, origins=[ORIGIN]
        )


# ------------------------------------------------------------------ assertion refused


def _assertion(
    key: SoftAuthenticator,
    stored: RegisteredCredential,
    *,
    origin: str = ORIGIN,
    authenticator_rp_id: str | None = None,
) -> tuple[dict, str]:
    options, challenge = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[stored.credential_id]
    )
    return key.get(options, origin, rp_id=authenticator_rp_id), challenge


def _verify(credential: dict, challenge: str, stored: RegisteredCredential, **changes: Any) -> int:
    arguments: dict[str, Any] = {
        "credential": credential,
        "expected_challenge": challenge,
        "rp_id": RP_ID,
        "origins": [ORIGIN],
        "public_key": stored.public_key,
        "sign_count": stored.sign_count,
    }
    arguments.update(changes)
    return authentication_verify(**arguments)


def test_an_assertion_from_another_origin_is_refused() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored, origin="https://acme.example.com.evil.io")
    with pytest.raises(UnauthorizedError, match="origin"):
        _verify(credential, challenge, stored)


def test_an_assertion_for_another_rp_id_is_refused() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    key.credentials[stored.credential_id].rp_id = "example.com"
    credential, challenge = _assertion(key, stored, authenticator_rp_id="example.com")
    with pytest.raises(UnauthorizedError, match="RP ID"):
        _verify(credential, challenge, stored)
    credential, challenge = _assertion(key, stored, authenticator_rp_id="example.com")
    with pytest.raises(UnauthorizedError, match="RP ID"):
        _verify(credential, challenge, stored, rp_id="other.example.com")


def test_an_assertion_over_another_challenge_is_refused() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    credential, _ = _assertion(key, stored)
    _, current = authentication_options(rp_id=RP_ID, allow_credential_ids=[stored.credential_id])
    with pytest.raises(UnauthorizedError, match="challenge"):
        _verify(credential, current, stored)
    with pytest.raises(UnauthorizedError, match="new options"):
        _verify(credential, "", stored)


def test_a_tampered_signature_is_refused() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored)
    signature = bytearray(b64url_decode(credential["response"]["signature"]))
    signature[-1] ^= 0x01
    credential["response"]["signature"] = b64url(bytes(signature))
    with pytest.raises(UnauthorizedError, match="signature"):
        _verify(credential, challenge, stored)


def test_tampered_authenticator_data_is_refused() -> None:
    # The signature covers the flags and the count: raising the count by hand fails.
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored)
    data = bytearray(b64url_decode(credential["response"]["authenticatorData"]))
    data[36] = 0x7F
    credential["response"]["authenticatorData"] = b64url(bytes(data))
    with pytest.raises(UnauthorizedError, match="signature"):
        _verify(credential, challenge, stored)


def test_another_keys_signature_is_refused() -> None:
    mine, theirs = SoftAuthenticator(), SoftAuthenticator()
    stored_mine = _register(mine)
    stored_theirs = _register(theirs)
    credential, challenge = _assertion(theirs, stored_theirs)
    with pytest.raises(UnauthorizedError, match="signature"):
        _verify(credential, challenge, stored_mine)


def test_a_replayed_assertion_is_refused_by_its_count() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored)
    new_count = _verify(credential, challenge, stored)
    assert new_count == 1
    with pytest.raises(UnauthorizedError, match="sign count"):
        _verify(credential, challenge, stored, sign_count=new_count)


def test_a_cloned_key_is_refused_once_the_original_counted_past_it() -> None:
    original = SoftAuthenticator()
    stored = _register(original)
    clone = original.clone()
    count = _sign_in(original, stored)
    count = _sign_in(original, stored, sign_count=count)  # the original is at 2
    credential, challenge = _assertion(clone, stored)  # the clone says 1
    with pytest.raises(UnauthorizedError, match="sign count"):
        _verify(credential, challenge, stored, sign_count=count)


def test_an_assertion_naming_another_user_is_refused() -> None:
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored)
    with pytest.raises(UnauthorizedError, match="another account"):
        _verify(credential, challenge, stored, user_handle=b"\x02" * 32)
    credential, challenge = _assertion(key, stored)
    assert _verify(credential, challenge, stored, user_handle=HANDLE, sign_count=1) == 2


# ------------------------------------------------------------------ hostile input


def _mutations(credential: dict, rng: random.Random) -> list[tuple[str, Any]]:
    """Ways a client can break a credential, each with what was done: fields gone, wrong
    types, garbage bytes."""
    junk_values: list[Any] = [None, "x", [], 7, {}]
    out: list[tuple[str, Any]] = [("not an object", junk) for junk in junk_values]

    def changed(path: tuple[str, ...], value: Any) -> dict:
        broken = json.loads(json.dumps(credential))
        target = broken
        for step in path[:-1]:
            target = target[step]
        if value is _GONE:
            target.pop(path[-1])
        else:
            target[path[-1]] = value
        return broken

    fields: list[tuple[str, ...]] = [(f,) for f in ("id", "rawId", "type", "response")]
    fields += [("response", f) for f in credential["response"]]
    for path in fields:
        label = ".".join(path)
        out.append((f"{label} gone", changed(path, _GONE)))
        for junk in (None, 7, "", "%%%", "AAAA", b64url(rng.randbytes(64)), ["a"], {"a": 1}):
            out.append((f"{label} = {junk!r}", changed(path, junk)))
        value = credential["response"].get(path[-1]) if len(path) == 2 else None
        if isinstance(value, str) and value:
            raw = b64url_decode(value)
            for _ in range(10):
                mutated = bytearray(raw)
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                cut = bytes(mutated[: rng.randrange(len(raw) + 1)])
                out.append((f"{label} mutated", changed(path, b64url(cut))))
    return out


_GONE = object()
# Optional members: without them (or with an empty value) the credential is still whole.
_OPTIONAL = ("response.userHandle", "response.transports")


def _optional_dropped(label: str) -> bool:
    return label.startswith(_OPTIONAL) and (
        label.endswith((" gone", "= None", "= ''", "= 7", "= ['a']", "= {'a': 1}"))
        or label.startswith("response.transports")
    )


def test_a_malformed_registration_raises_only_validation_errors() -> None:
    rng = random.Random(16)
    credential, expected = _registration()
    for label, broken in _mutations(credential, rng):
        try:
            registration_verify(credential=broken, **expected)
        except ValidationError:
            continue
        assert _optional_dropped(label), f"accepted with {label}"


def test_a_malformed_assertion_raises_only_unauthorized() -> None:
    rng = random.Random(16)
    key = SoftAuthenticator()
    stored = _register(key)
    credential, challenge = _assertion(key, stored)
    for label, broken in _mutations(credential, rng):
        try:
            _verify(broken, challenge, stored, user_handle=HANDLE)
        except UnauthorizedError:
            continue
        assert _optional_dropped(label), f"accepted with {label}"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    response=st.dictionaries(
        st.sampled_from(
            [
                "clientDataJSON",
                "attestationObject",
                "authenticatorData",
                "signature",
                "userHandle",
                "transports",
            ]
        ),
        _JSON | st.binary(max_size=80).map(b64url),
    )
)
def test_any_json_as_a_credential_is_refused_cleanly(response: dict[str, Any]) -> None:
    credential = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": response}
    with pytest.raises(ValidationError):
        registration_verify(
            credential=credential,
            expected_challenge=b64url(b"c" * 32),
            rp_id=RP_ID,
            origins=[ORIGIN],
        )
    with pytest.raises(UnauthorizedError):
        authentication_verify(
            credential=credential,
            expected_challenge=b64url(b"c" * 32),
            rp_id=RP_ID,
            origins=[ORIGIN],
            public_key=b"\xa0",
            sign_count=0,
        )
