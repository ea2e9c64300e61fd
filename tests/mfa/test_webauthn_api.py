"""WebAuthn over the real API with a software authenticator: enrolment, sign-in, step-up,
and the keys that must not pass (a clone, another user's, another tenant's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import cbor2
import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.mfa.models import Factor, MfaChallenge
from apps.mfa.webauthn_flows import NOT_REGISTERED
from tests.accounts.conftest import Api
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD
from tests.mfa.conftest import FACTORS, ME, VERIFY
from tests.mfa.flows import claims, login, stepped_up, verify
from tests.mfa.soft_authenticator import (
    AuthenticatorError,
    SoftAuthenticator,
    b64url,
    b64url_decode,
)

pytestmark = pytest.mark.django_db

OPTIONS = "/api/v1/auth/mfa/webauthn/options"


def origin(api: Api) -> str:
    return f"https://{api.host}"


@dataclass
class Enrolled:
    factor_id: str
    key: SoftAuthenticator
    recovery_codes: list[str]


def enrol_key(api: Api, access_token: str, key: SoftAuthenticator | None = None) -> Enrolled:
    key = key or SoftAuthenticator()
    created = api.call("post", FACTORS, {"type": "webauthn", "name": "YubiKey"}, token=access_token)
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    confirmed = api.call(
        "post",
        f"{FACTORS}/{data['id']}/confirm",
        {"credential": key.create(data["options"], origin(api))},
        token=access_token,
    )
    assert confirmed.status_code == 200, confirmed.content
    return Enrolled(data["id"], key, confirmed.json()["data"]["recovery_codes"] or [])


def sign_in_options(api: Api, mfa_token: str) -> dict:
    answer = api.call("post", OPTIONS, {"mfa_token": mfa_token})
    assert answer.status_code == 200, answer.content
    return dict(answer.json()["data"]["options"])


def sign_in_with(api: Api, email: str, key: SoftAuthenticator, **get_args):
    pending = login(api, email)
    assert pending["mfa_required"] is True
    options = sign_in_options(api, pending["mfa_token"])
    credential = key.get(options, origin(api), **get_args)
    return verify(api, pending["mfa_token"], "webauthn", credential=credential)


@pytest.fixture
def enrolled(api_a, member_a) -> Enrolled:
    return enrol_key(api_a, api_a.login(member_a.email)["access_token"])


# ------------------------------------------------------------------ enrolment


def test_enrolment_answers_creation_options_and_the_credential_confirms(
    api_a, member_a, tenant_a
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    created = api_a.call("post", FACTORS, {"type": "webauthn", "name": "YubiKey"}, token=token)
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    options = data["options"]
    assert options["rp"] == {"id": api_a.host, "name": tenant_a.tenant.name}
    assert options["user"]["name"] == member_a.email
    assert member_a.email.encode() not in options["user"]["id"].encode()
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    with tenant_context(tenant_a.tenant):
        pending = Factor.objects.get(pk=data["id"])
        assert pending.kind == "webauthn" and pending.confirmed_at is None
        assert pending.pending_challenge == options["challenge"]

    key = SoftAuthenticator(transports=("usb", "nfc"))
    confirmed = api_a.call(
        "post",
        f"{FACTORS}/{data['id']}/confirm",
        {"credential": key.create(options, origin(api_a))},
        token=token,
    )
    assert confirmed.status_code == 200, confirmed.content
    assert len(confirmed.json()["data"]["recovery_codes"]) == 10
    with tenant_context(tenant_a.tenant):
        factor = Factor.objects.get(pk=data["id"])
        assert factor.confirmed_at is not None
        assert bytes(factor.credential_id or b"") == next(iter(key.credentials))
        assert bytes(factor.public_key or b"")[:1] == b"\xa5"  # a CBOR map of 5: the COSE key
        assert factor.sign_count == 0
        assert factor.transports == ["nfc", "usb"]
        assert factor.pending_challenge == ""
        assert AuditEvent.objects.filter(action="mfa.factor_confirmed", target_id=str(factor.pk))

    # The next enrolment (a second factor wants a step-up) excludes the key already there,
    # and the browser refuses it.
    recovery_code = confirmed.json()["data"]["recovery_codes"][0]
    token = stepped_up(api_a, token, "recovery_code", code=recovery_code)
    again = api_a.call("post", FACTORS, {"type": "webauthn", "name": "Same"}, token=token)
    excluded = again.json()["data"]["options"]["excludeCredentials"]
    assert excluded == [
        {
            "id": b64url(next(iter(key.credentials))),
            "type": "public-key",
            "transports": ["nfc", "usb"],
        }
    ]
    with pytest.raises(AuthenticatorError, match="InvalidStateError"):
        key.create(again.json()["data"]["options"], origin(api_a))


def test_a_registration_from_another_origin_or_challenge_is_refused(
    api_a, member_a, tenant_a
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    created = api_a.call("post", FACTORS, {"type": "webauthn", "name": "Key"}, token=token)
    data = created.json()["data"]
    confirm = f"{FACTORS}/{data['id']}/confirm"
    key = SoftAuthenticator()

    phished = key.create(data["options"], "https://alpha.localhost.evil.example")
    answer = api_a.call("post", confirm, {"credential": phished}, token=token)
    assert answer.status_code == 422
    assert "origin" in answer.json()["error"]["message"]

    other = api_a.call("post", FACTORS, {"type": "webauthn", "name": "Other"}, token=token)
    stale = key.create(other.json()["data"]["options"], origin(api_a))
    assert api_a.call("post", confirm, {"credential": stale}, token=token).status_code == 422
    assert api_a.call("post", confirm, {"code": "123456"}, token=token).status_code == 422
    assert api_a.call("post", confirm, {"credential": "nope"}, token=token).status_code == 422
    with tenant_context(tenant_a.tenant):
        factor = Factor.objects.get(pk=data["id"])
        assert factor.confirmed_at is None and factor.credential_id is None


def test_a_registration_answered_too_late_is_refused(api_a, member_a, tenant_a) -> None:
    token = api_a.login(member_a.email)["access_token"]
    data = api_a.call("post", FACTORS, {"type": "webauthn", "name": "K"}, token=token).json()[
        "data"
    ]
    with tenant_context(tenant_a.tenant):
        Factor.objects.filter(pk=data["id"]).update(
            created_at=timezone.now() - timedelta(minutes=30)
        )
    credential = SoftAuthenticator().create(data["options"], origin(api_a))
    late = api_a.call(
        "post", f"{FACTORS}/{data['id']}/confirm", {"credential": credential}, token=token
    )
    assert late.status_code == 422 and "expired" in late.json()["error"]["details"]["credential"][0]


def test_a_credential_id_someone_holds_cannot_be_claimed(
    api_a, member_a, tenant_a, enrolled
) -> None:
    # With attestation "none" a client can make a key of its own under any credential id.
    with tenant_context(tenant_a.tenant):
        other = make_user(email="mallory@alpha.test", username="mallory")
    token = api_a.login(other.email)["access_token"]
    data = api_a.call("post", FACTORS, {"type": "webauthn", "name": "K"}, token=token).json()[
        "data"
    ]
    victims_id = next(iter(enrolled.key.credentials))
    credential = SoftAuthenticator().create(data["options"], origin(api_a))
    forged = _with_credential_id(credential, victims_id)
    answer = api_a.call(
        "post", f"{FACTORS}/{data['id']}/confirm", {"credential": forged}, token=token
    )
    assert answer.status_code == 422
    assert "registered already" in answer.json()["error"]["details"]["credential"][0]
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(credential_id=victims_id).count() == 1


def _with_credential_id(credential: dict, credential_id: bytes) -> dict:
    """The same registration, its attested credential id replaced (and id/rawId with it)."""
    attestation = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    old_length = int.from_bytes(auth_data[53:55], "big")
    new_auth_data = (
        auth_data[:53]
        + len(credential_id).to_bytes(2, "big")
        + credential_id
        + auth_data[55 + old_length :]
    )
    attestation["authData"] = new_auth_data
    response = {
        **credential["response"],
        "attestationObject": b64url(cbor2.dumps(attestation)),
    }
    return {
        **credential,
        "id": b64url(credential_id),
        "rawId": b64url(credential_id),
        "response": response,
    }


# ------------------------------------------------------------------ sign-in


def test_sign_in_with_the_key(api_a, member_a, tenant_a, enrolled) -> None:
    pending = login(api_a, member_a.email)
    assert pending["factors"] == ["webauthn", "recovery_code"]
    options = sign_in_options(api_a, pending["mfa_token"])
    assert options["rpId"] == api_a.host
    assert [c["id"] for c in options["allowCredentials"]] == [
        b64url(next(iter(enrolled.key.credentials)))
    ]
    with tenant_context(tenant_a.tenant):
        assert MfaChallenge.objects.get(user=member_a).webauthn_challenge == options["challenge"]

    credential = enrolled.key.get(options, origin(api_a))
    answer = verify(api_a, pending["mfa_token"], "webauthn", credential=credential)
    assert answer.status_code == 200, answer.content
    pair = answer.json()["data"]
    assert claims(pair["access_token"])["amr"] == ["pwd", "hwk"]
    assert api_a.call("get", ME, token=pair["access_token"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        factor = Factor.objects.get(pk=enrolled.factor_id)
        assert factor.sign_count == 1
        assert factor.last_used_at is not None

    # The same assertion again: the sign-in it answered is spent, and a new one has
    # another challenge.
    assert verify(api_a, pending["mfa_token"], "webauthn", credential=credential).status_code == 401
    fresh = login(api_a, member_a.email)["mfa_token"]
    sign_in_options(api_a, fresh)
    replay = verify(api_a, fresh, "webauthn", credential=credential)
    assert replay.status_code == 401


def test_a_verification_without_options_first_is_refused(api_a, member_a, enrolled) -> None:
    pending = login(api_a, member_a.email)
    options = {
        "challenge": b64url(b"a challenge the server never gave"),
        "rpId": api_a.host,
        "allowCredentials": [],
    }
    credential = enrolled.key.get(options, origin(api_a))
    answer = verify(api_a, pending["mfa_token"], "webauthn", credential=credential)
    assert answer.status_code == 401
    missing = verify(api_a, login(api_a, member_a.email)["mfa_token"], "webauthn")
    assert missing.status_code == 422 and "credential" in missing.json()["error"]["details"]


def test_a_cloned_key_is_refused(api_a, member_a, tenant_a, enrolled) -> None:
    clone = enrolled.key.clone()  # taken at enrolment: its counter stays behind
    assert sign_in_with(api_a, member_a.email, enrolled.key).status_code == 200
    assert sign_in_with(api_a, member_a.email, enrolled.key).status_code == 200

    pending = login(api_a, member_a.email)
    options = sign_in_options(api_a, pending["mfa_token"])
    refused = verify(
        api_a, pending["mfa_token"], "webauthn", credential=clone.get(options, origin(api_a))
    )
    assert refused.status_code == 401
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.get(pk=enrolled.factor_id).sign_count == 2
        assert MfaChallenge.objects.get(pk=_challenge_id(member_a)).attempts == 1
        assert AuditEvent.objects.filter(
            action="mfa.verification_failed", changes__method="webauthn"
        ).exists()


def _challenge_id(user):
    return (
        MfaChallenge.objects.filter(user=user)
        .order_by("-created_at")
        .values_list("pk", flat=True)[0]
    )


def test_another_users_key_is_refused(api_a, member_a, staff_a, tenant_a, enrolled) -> None:
    theirs = enrol_key(api_a, api_a.login(staff_a.email)["access_token"])
    pending = login(api_a, member_a.email)
    options = sign_in_options(api_a, pending["mfa_token"])
    # The browser offers any key of this site when the list does not name it.
    credential = theirs.key.get({**options, "allowCredentials": []}, origin(api_a))
    answer = verify(api_a, pending["mfa_token"], "webauthn", credential=credential)
    assert answer.status_code == 401
    # Their key is fine for them.
    assert sign_in_with(api_a, staff_a.email, theirs.key).status_code == 200


def test_another_tenants_key_is_refused(api_a, api_b, member_a, tenant_b, enrolled) -> None:
    with tenant_context(tenant_b.tenant):
        # The same e-mail and, likely, the same user id, in the other tenant.
        member_b = make_user(email=member_a.email, username="member")
    elsewhere = enrol_key(api_b, api_b.login(member_b.email)["access_token"])

    pending = login(api_a, member_a.email)
    options = sign_in_options(api_a, pending["mfa_token"])
    # Even a key that signs for this tenant's host (not what a browser would do) is
    # unknown here: keys live in their tenant's schema.
    credential = elsewhere.key.get(
        {**options, "allowCredentials": []}, origin(api_a), rp_id=api_b.host
    )
    assert verify(api_a, pending["mfa_token"], "webauthn", credential=credential).status_code == 401
    for stored in elsewhere.key.credentials.values():
        stored.rp_id = api_a.host
    credential = elsewhere.key.get({**options, "allowCredentials": []}, origin(api_a))
    answer = verify(api_a, pending["mfa_token"], "webauthn", credential=credential)
    assert answer.status_code == 401


def test_options_need_a_live_sign_in_or_an_access_token(api_a, member_a, enrolled) -> None:
    assert api_a.call("post", OPTIONS, {}).status_code == 401
    assert api_a.call("post", OPTIONS, {"mfa_token": "not-a-token"}).status_code == 401
    assert api_a.call("post", OPTIONS, {"mfa_token": "x", "extra": 1}).status_code == 422


def test_options_for_a_user_without_a_key_are_409(api_a, member_a, tenant_a) -> None:
    from tests.mfa.factories import totp_factor

    with tenant_context(tenant_a.tenant):
        totp_factor(member_a)
    pending = login(api_a, member_a.email)
    answer = api_a.call("post", OPTIONS, {"mfa_token": pending["mfa_token"]})
    assert answer.status_code == 409


# ------------------------------------------------------------------ step-up


def test_step_up_with_the_key(api_a, member_a, enrolled) -> None:
    first = sign_in_with(api_a, member_a.email, enrolled.key).json()["data"]
    answer = api_a.call("post", OPTIONS, {}, token=first["access_token"])
    assert answer.status_code == 200, answer.content
    options = answer.json()["data"]["options"]
    credential = enrolled.key.get(options, origin(api_a))
    stepped = api_a.call(
        "post",
        VERIFY,
        {"method": "webauthn", "credential": credential},
        token=first["access_token"],
    )
    assert stepped.status_code == 200, stepped.content
    assert "hwk" in claims(stepped.json()["data"]["access_token"])["amr"]

    # The step-up challenge is taken by its first answer.
    again = api_a.call(
        "post",
        VERIFY,
        {"method": "webauthn", "credential": enrolled.key.get(options, origin(api_a))},
        token=first["access_token"],
    )
    assert again.status_code == 401


def _step_up(api: Api, access_token: str, key: SoftAuthenticator, **get_args):
    options = api.call("post", OPTIONS, {}, token=access_token).json()["data"]["options"]
    credential = key.get({**options, "allowCredentials": []}, origin(api), **get_args)
    return api.call(
        "post", VERIFY, {"method": "webauthn", "credential": credential}, token=access_token
    )


def test_step_up_names_why_a_key_is_refused(
    api_a, api_b, member_a, staff_a, tenant_b, enrolled
) -> None:
    # Step-up answers carry the method's own message (sign-in answers say only "wrong").
    access = sign_in_with(api_a, member_a.email, enrolled.key).json()["data"]["access_token"]

    theirs = enrol_key(api_a, api_a.login(staff_a.email)["access_token"])
    answer = _step_up(api_a, access, theirs.key)
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == NOT_REGISTERED

    with tenant_context(tenant_b.tenant):
        member_b = make_user(email=member_a.email, username="member")
    elsewhere = enrol_key(api_b, api_b.login(member_b.email)["access_token"])
    for stored in elsewhere.key.credentials.values():
        stored.rp_id = api_a.host  # signs for this host: still unknown in this schema
    answer = _step_up(api_a, access, elsewhere.key)
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == NOT_REGISTERED

    clone = enrolled.key.clone()
    assert _step_up(api_a, access, enrolled.key).status_code == 200
    clone.credentials[next(iter(clone.credentials))].sign_count = 0
    cloned = _step_up(api_a, access, clone)
    assert cloned.status_code == 401
    assert "sign count" in cloned.json()["error"]["message"]


def test_an_operator_enrols_and_signs_in_on_the_public_host(api, operator) -> None:
    public = Api(api, settings.PLATFORM_BASE_DOMAIN)
    token = public.login(operator.email, ADMIN_PASSWORD)["access_token"]
    created = public.call("post", FACTORS, {"type": "webauthn", "name": "Key"}, token=token)
    assert created.status_code == 201, created.content
    assert created.json()["data"]["options"]["rp"]["id"] == settings.PLATFORM_BASE_DOMAIN
    enrolled = enrol_key(public, token)
    pending = login(public, operator.email, ADMIN_PASSWORD)
    options = sign_in_options(public, pending["mfa_token"])
    credential = enrolled.key.get(options, origin(public))
    answer = verify(public, pending["mfa_token"], "webauthn", credential=credential)
    assert answer.status_code == 200, answer.content
    assert claims(answer.json()["data"]["access_token"])["amr"] == ["pwd", "hwk"]


def test_a_sign_in_that_must_enrol_can_enrol_a_key_and_finish_with_it(
    api_a, member_a, tenant_a
) -> None:
    # The tenant requires a factor, and the user's grace period ended long ago.
    owner = api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"]
    policy = {"settings": {"mfa": {"mode": "required", "grace_days": 0}}}
    assert api_a.call("patch", "/api/v1/tenant", policy, token=owner).status_code == 200
    with tenant_context(tenant_a.tenant):
        type(member_a).objects.filter(pk=member_a.pk).update(
            created_at=timezone.now() - timedelta(days=30)
        )
    pending = login(api_a, member_a.email)
    assert pending["enrolment_required"] is True
    token = pending["mfa_token"]
    # No key yet: no assertion options for this sign-in.
    assert api_a.call("post", OPTIONS, {"mfa_token": token}).status_code == 409

    created = api_a.call(
        "post", "/api/v1/auth/mfa/enrol", {"mfa_token": token, "type": "webauthn", "name": "Key"}
    )
    assert created.status_code == 201, created.content
    setup = created.json()["data"]
    key = SoftAuthenticator()
    confirmed = api_a.call(
        "post",
        "/api/v1/auth/mfa/enrol/confirm",
        {
            "mfa_token": token,
            "factor_id": setup["id"],
            "credential": key.create(setup["options"], origin(api_a)),
        },
    )
    assert confirmed.status_code == 200, confirmed.content
    assert len(confirmed.json()["data"]["recovery_codes"]) == 10

    options = sign_in_options(api_a, token)
    done = verify(api_a, token, "webauthn", credential=key.get(options, origin(api_a)))
    assert done.status_code == 200, done.content
    assert claims(done.json()["data"]["access_token"])["amr"] == ["pwd", "hwk"]
