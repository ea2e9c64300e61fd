"""Signing keys: verification by an outside library, rotation with a grace period, discovery."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import jwt as pyjwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from joserfc import jwt as joserfc_jwt
from joserfc.errors import BadSignatureError, InvalidClaimError
from joserfc.jwk import KeySet

from apps.keys import keyring
from apps.keys.crypto import private_key_decrypt, public_jwk, public_key_load
from apps.keys.models import SigningKey
from apps.keys.services import grace_period, signer_get, signing_key_rotate
from tests.accounts.conftest import Api

ME = "/api/v1/users/me"


def _kid(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def _keys() -> list[SigningKey]:
    with schema_context("public"):
        return list(SigningKey.objects.order_by("id"))


def _discover(api: Api) -> tuple[dict[str, Any], Any]:
    configuration = api.call("get", "/.well-known/openid-configuration")
    assert configuration.status_code == 200
    document = configuration.json()
    path = document["jwks_uri"].split(api.host, 1)[1]
    jwks = api.call("get", path)
    assert jwks.status_code == 200
    return document, jwks.json()


# RFC 9864 names the algorithm "Ed25519"; PyJWT 2.15 (which signs) knows only "EdDSA".
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.django_db
def test_an_outside_service_verifies_a_platform_token_with_joserfc(
    api_a: Api, member_a: Any, tenant_a: Any
) -> None:
    # Given a platform access token, and only what the tenant host publishes
    token = api_a.login("member@alpha.test")["access_token"]
    document, jwks = _discover(api_a)

    # When another JWT library verifies it with the published key set
    verified = joserfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    joserfc_jwt.JWTClaimsRegistry(
        leeway=5,
        iss={"essential": True, "value": document["issuer"]},
        aud={"essential": True, "value": document["audience"]},
        exp={"essential": True},
        tenant={"essential": True, "value": document["tenant"]},
    ).validate(verified.claims)

    # Then its signature and claims check out, and a tampered or foreign token does not
    assert verified.header["kid"] == _kid(token)
    assert verified.claims["tenant"] == tenant_a.schema
    header, body, signature = token.split(".")
    forged_body = pyjwt.utils.base64url_encode(
        pyjwt.utils.base64url_decode(body).replace(b'"sub":"', b'"sub":"1')
    ).decode()
    with pytest.raises(BadSignatureError):
        joserfc_jwt.decode(
            f"{header}.{forged_body}.{signature}",
            KeySet.import_key_set(jwks),
            algorithms=["EdDSA"],
        )
    with pytest.raises(InvalidClaimError):
        joserfc_jwt.JWTClaimsRegistry(aud={"essential": True, "value": "another-api"}).validate(
            verified.claims
        )


@pytest.mark.django_db
def test_rotation_keeps_old_tokens_valid_until_the_grace_ends_then_refuses_them(
    api_a: Api, member_a: Any
) -> None:
    # Given tokens signed before a rotation
    before = api_a.login("member@alpha.test")
    old_kid = _kid(before["access_token"])

    # When the key is rotated
    out = StringIO()
    call_command("rotate_signing_key", stdout=out)

    # Then the old tokens still work (access and refresh), new ones carry the new kid,
    # and both keys are published
    assert api_a.call("get", ME, token=before["access_token"]).status_code == 200
    after = api_a.login("member@alpha.test")
    new_kid = _kid(after["access_token"])
    assert new_kid != old_kid and new_kid in out.getvalue()
    assert api_a.call("get", ME, token=after["access_token"]).status_code == 200
    refreshed = api_a.call(
        "post", "/api/v1/auth/refresh", {"refresh_token": before["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert _kid(refreshed.json()["data"]["access_token"]) == new_kid
    _, jwks = _discover(api_a)
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    old = next(key for key in _keys() if key.kid == old_kid)
    assert old.not_after is not None and old.superseded_at is not None
    assert old.not_after - old.superseded_at == grace_period() >= timedelta(days=14)

    # When the grace period has passed (every token the old key signed has expired)
    with schema_context("public"):
        SigningKey.objects.filter(kid=old_kid).update(
            not_after=timezone.now() - timedelta(seconds=1)
        )
    keyring.keyring_reset()

    # Then its tokens are refused and it is no longer published
    assert api_a.call("get", ME, token=before["access_token"]).status_code == 401
    assert api_a.call("get", ME, token=after["access_token"]).status_code == 200
    _, jwks = _discover(api_a)
    assert [key["kid"] for key in jwks["keys"]] == [new_kid]

    # And retiring erases its private half
    call_command("rotate_signing_key", "--retire-expired", stdout=StringIO())
    old = next(key for key in _keys() if key.kid == old_kid)
    assert old.retired_at is not None and old.private_key_encrypted == ""
    assert api_a.call("get", ME, token=before["access_token"]).status_code == 401


@pytest.mark.django_db
def test_a_process_with_a_stale_key_set_verifies_a_new_kid_at_once(
    api_a: Api, member_a: Any
) -> None:
    # Given a process that loaded the key set before another process rotated
    stale = dataclasses.replace(keyring.keyring_get(), loaded_at=time.monotonic() - 2)
    signing_key_rotate()
    token = api_a.login("member@alpha.test")["access_token"]
    keyring._keyring = stale
    assert _kid(token) not in stale.verifying

    # Then the unknown kid is looked up and the token is accepted
    assert api_a.call("get", ME, token=token).status_code == 200


@pytest.mark.django_db
def test_discovery_documents_on_tenant_and_public_hosts(
    api_a: Api, tenant_a: Any, api: Any
) -> None:
    document, jwks = _discover(api_a)
    assert document["issuer"] == "platform" and document["audience"] == "platform-api"
    assert document["jwks_uri"] == f"https://{tenant_a.host}/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert document["tenant"] == tenant_a.schema
    signing = next(key for key in _keys() if key.is_signing)
    assert public_jwk(public_key_load(signing.public_key), kid=signing.kid) in jwks["keys"]
    assert all(set(key) == {"kty", "crv", "x", "kid", "alg", "use"} for key in jwks["keys"])

    public = Api(api, "localhost")
    response = public.call("get", "/.well-known/jwks.json")
    assert response.status_code == 200 and response.json() == jwks
    assert response["Cache-Control"] == "public, max-age=300"
    assert public.call("get", "/.well-known/openid-configuration").json()["tenant"] == "public"


@pytest.mark.django_db
def test_well_known_documents_cost_no_query_on_a_warm_process(
    api_a: Api, django_assert_num_queries: Any
) -> None:
    api_a.call("get", "/.well-known/jwks.json")  # warms the tenant and key caches
    with django_assert_num_queries(0):
        assert api_a.call("get", "/.well-known/jwks.json").status_code == 200


@pytest.mark.django_db
def test_private_keys_are_encrypted_at_rest(settings: Any) -> None:
    key = next(key for key in _keys() if key.is_signing)
    assert "PRIVATE KEY" not in key.private_key_encrypted
    private = private_key_decrypt(key.private_key_encrypted)
    assert public_jwk(private.public_key()) == public_jwk(public_key_load(key.public_key))
    settings.JWT_KEY_ENCRYPTION_KEYS = ["another-secret"]
    with pytest.raises(ImproperlyConfigured):
        private_key_decrypt(key.private_key_encrypted)


@pytest.mark.django_db
def test_the_first_key_is_created_when_there_is_none(api_a: Api, member_a: Any) -> None:
    with schema_context("public"):
        SigningKey.objects.all().delete()
    keyring.keyring_reset()
    token = api_a.login("member@alpha.test")["access_token"]
    signing = [key for key in _keys() if key.is_signing]
    assert [key.kid for key in signing] == [_kid(token)]
    assert api_a.call("get", ME, token=token).status_code == 200


@pytest.mark.django_db
def test_keys_live_in_the_public_schema_only(tenant_a: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s",
            ["keys_signingkey"],
        )
        assert [row[0] for row in cursor.fetchall()] == ["public"]


@pytest.mark.django_db
def test_signing_keys_command_lists_states() -> None:
    signing_key_rotate()
    out = StringIO()
    call_command("signing_keys", stdout=out)
    listing = out.getvalue()
    assert listing.count("signing") == 1 and "grace" in listing


def test_the_grace_outlives_every_token_the_superseded_key_can_still_sign(settings: Any) -> None:
    # Other processes keep signing with it until they re-read the key set.
    refresh = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    leeway = timedelta(seconds=settings.SIMPLE_JWT["LEEWAY"])
    stale = timedelta(seconds=settings.SIGNING_KEYS_CACHE_SECONDS)
    assert grace_period() == refresh + leeway + stale


@pytest.mark.django_db
def test_a_lost_encryption_secret_stops_issuing_but_not_verifying(
    api_a: Api, member_a: Any, settings: Any
) -> None:
    token = api_a.login("member@alpha.test")["access_token"]
    settings.JWT_KEY_ENCRYPTION_KEYS = ["not-the-secret-the-key-was-encrypted-with"]

    assert api_a.call("get", ME, token=token).status_code == 200
    with pytest.raises(ImproperlyConfigured, match="rotate_signing_key"):
        signer_get()

    # A rotation makes a key under the new secret: issuing works again.
    signing_key_rotate()
    assert signer_get().kid != _kid(token)
    assert api_a.call("get", ME, token=token).status_code == 200
