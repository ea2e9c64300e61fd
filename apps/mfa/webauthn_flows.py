"""WebAuthn security keys and passkeys as second factors, wired into apps.mfa's registries.

- Enrolment: `POST /auth/mfa/factors {type: "webauthn", name}` answers `{id, options}`
  (the registration challenge kept in the unconfirmed factor's `pending_challenge`);
  `POST /auth/mfa/factors/{id}/confirm {credential}` verifies the browser's answer and
  stores the key (credential id, COSE public key, sign count, transports).
- Sign-in and step-up: `POST /auth/mfa/webauthn/options` answers the assertion options
  for the user's keys: with the sign-in's `mfa_token` the challenge is kept on its
  MfaChallenge (`webauthn_challenge`); with an access token instead (a step-up) it is kept
  in Redis for CEREMONY_TIMEOUT_SECONDS and taken (once) by the verification. Then
  `POST /auth/mfa/verify {method: "webauthn", credential}` checks the assertion against
  the key the credential names, among the user's own confirmed keys only, and stores the
  new sign count (a count that does not grow is refused: a cloned key, or a replay).

The relying party comes from the request (see `relying_party`): its id is the host the
client used unless MFA_WEBAUTHN_RP_ID names a parent domain of it; the origins accepted
are `https://<host>` (`http://<host>` too while PLATFORM_URL_SCHEME is http) and
MFA_WEBAUTHN_ORIGINS. A key registered on one tenant's host is stored in that tenant's
schema and is looked up nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.utils import timezone
from django_redis import get_redis_connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.core.context import current_request
from apps.core.errors import (
    ConflictError,
    ServiceUnavailableError,
    UnauthorizedError,
    ValidationError,
)
from apps.core.serializers import InputSerializer, validated
from apps.core.tenancy import current_schema
from apps.mfa.models import Factor
from apps.mfa.services.challenges import challenge_lock
from apps.mfa.services.factors import enrolment_register
from apps.mfa.services.verify import method_register
from apps.mfa.webauthn import (
    CEREMONY_TIMEOUT_SECONDS,
    authentication_options,
    authentication_verify,
    credential_id_of,
    registration_options,
    registration_verify,
)

if TYPE_CHECKING:
    from apps.mfa.models import MfaChallenge

logger = structlog.get_logger("apps.mfa.webauthn")

# A registration must be answered within this long of its options (the browser gives the
# person CEREMONY_TIMEOUT_SECONDS; a little more for the round trip).
REGISTRATION_SECONDS = CEREMONY_TIMEOUT_SECONDS + 60
CREDENTIAL_REQUIRED = "The credential the browser returned (JSON) is required."
NOT_REGISTERED = "This security key is not registered to your account."
NO_KEY = "You have no security key to sign in with; use another factor."
ASK_OPTIONS = "Ask for the security key's options first (POST /api/v1/auth/mfa/webauthn/options)."
UNAVAILABLE = "Security keys cannot be checked right now; try again shortly."


# ------------------------------------------------------------------ relying party


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]


def _tenant_host() -> str:
    """The current tenant's primary domain (with PLATFORM_URL_PORT): the host when a service
    runs without a request (a shell, a test)."""
    tenant = getattr(connection, "tenant", None)
    primary = getattr(tenant, "get_primary_domain", lambda: None)()
    host = str(getattr(primary, "domain", "") or settings.PLATFORM_BASE_DOMAIN)
    return f"{host}:{settings.PLATFORM_URL_PORT}" if settings.PLATFORM_URL_PORT else host


def relying_party(request: HttpRequest | None = None) -> RelyingParty:
    """Who the browser must see as the relying party for `request` (default: the request
    being served). The host is the one the client used, as Django read it (Host, checked
    against ALLOWED_HOSTS, and already resolved to this tenant by the tenant middleware),
    so a page on another site cannot pass: the browser puts its own origin in clientData
    and the key signs a hash of the RP id it was asked for."""
    request = request or current_request()
    host = request.get_host() if request is not None else _tenant_host()
    hostname, _port = split_domain_port(host)
    hostname = hostname or host
    configured = str(settings.MFA_WEBAUTHN_RP_ID).strip().lower()
    # A browser accepts an RP id only when it is the page's host or a parent domain of it.
    if configured and (hostname == configured or hostname.endswith(f".{configured}")):
        rp_id = configured
    else:
        rp_id = hostname
    origins = [f"https://{host}"]
    if settings.PLATFORM_URL_SCHEME == "http":
        origins.append(f"http://{host}")
    origins += [origin for origin in settings.MFA_WEBAUTHN_ORIGINS if origin not in origins]
    tenant_name = getattr(getattr(connection, "tenant", None), "name", "")
    name = str(settings.MFA_WEBAUTHN_RP_NAME or tenant_name or "Platform")
    return RelyingParty(id=rp_id, name=name, origins=origins)


def user_handle(user: User) -> bytes:
    """The WebAuthn user id of `user`: stable, opaque (no e-mail or name), and different in
    every schema even where the user ids are equal."""
    return hashlib.sha256(f"platform.mfa.webauthn:{current_schema()}:{user.pk}".encode()).digest()


def _keys(user: User) -> list[tuple[bytes, list[str]]]:
    rows = Factor.objects.filter(
        user=user, kind=Factor.Kind.WEBAUTHN, confirmed_at__isnull=False
    ).values_list("credential_id", "transports")
    return [
        (bytes(credential_id or b""), list(transports or [])) for credential_id, transports in rows
    ]


# ------------------------------------------------------------------ enrolment


def webauthn_registration_begin(*, user: User, factor: Factor) -> dict[str, Any]:
    party = relying_party()
    keys = _keys(user)
    options, challenge = registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_handle=user_handle(user),
        user_name=user.email,
        display_name=user.full_name or user.email,
        exclude_credential_ids=[credential_id for credential_id, _ in keys],
        exclude_transports=dict(keys),
    )
    factor.pending_challenge = challenge
    return {"options": options}


def _credential_lock(credential_id: bytes) -> None:
    """Serialise two registrations of one credential id until their transaction ends, so
    the second sees the first's row (and gets a 422, not the unique index's error)."""
    key = int.from_bytes(hashlib.sha256(credential_id).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def webauthn_registration_finish(*, factor: Factor, payload: Mapping[str, Any]) -> None:
    credential = payload.get("credential")
    if not isinstance(credential, dict):
        raise ValidationError.for_field("credential", CREDENTIAL_REQUIRED)
    if factor.created_at < timezone.now() - timedelta(seconds=REGISTRATION_SECONDS):
        raise ValidationError.for_field(
            "credential", "This registration has expired; remove it and add the key again."
        )
    party = relying_party()
    registered = registration_verify(
        credential=credential,
        expected_challenge=factor.pending_challenge,
        rp_id=party.id,
        origins=party.origins,
    )
    _credential_lock(registered.credential_id)
    # With attestation "none" anyone can claim any credential id for a key of their own;
    # an id already stored (this user's or another's) is refused, never taken over.
    if Factor.objects.filter(credential_id=registered.credential_id).exists():
        raise ValidationError.for_field("credential", "This security key is registered already.")
    factor.credential_id = registered.credential_id
    factor.public_key = registered.public_key
    factor.sign_count = registered.sign_count
    factor.transports = registered.transports


# ------------------------------------------------------------------ assertion


def _assertion_options(user: User) -> tuple[dict[str, Any], str]:
    keys = _keys(user)
    if not keys:
        raise ConflictError(NO_KEY)
    return authentication_options(
        rp_id=relying_party().id,
        allow_credential_ids=[credential_id for credential_id, _ in keys],
        transports=dict(keys),
    )


@transaction.atomic
def webauthn_sign_in_options(*, mfa_token: str) -> dict[str, Any]:
    """Assertion options for the sign-in `mfa_token` started; its challenge replaces any
    earlier one on the MfaChallenge."""
    challenge = challenge_lock(mfa_token=mfa_token)
    options, kept = _assertion_options(challenge.user)
    challenge.webauthn_challenge = kept
    challenge.save(update_fields=["webauthn_challenge"])
    return options


def _step_up_key(user: User, challenge: bytes) -> str:
    digest = hashlib.sha256(challenge).hexdigest()
    return f"{settings.RATE_LIMIT_KEY_PREFIX}:auth:{current_schema()}:webauthn:{user.pk}:{digest}"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def webauthn_step_up_options(*, user: User) -> dict[str, Any]:
    """Assertion options for a step-up of signed-in `user`; each challenge is kept until
    used once or CEREMONY_TIMEOUT_SECONDS pass (several may be open, one per tab)."""
    options, kept = _assertion_options(user)
    try:
        get_redis_connection("default").set(
            _step_up_key(user, _b64url_decode(kept)), 1, ex=CEREMONY_TIMEOUT_SECONDS
        )
    except RedisError as exc:
        logger.error("webauthn_challenge_not_kept", error=type(exc).__name__)
        raise ServiceUnavailableError(UNAVAILABLE) from None
    return options


def _step_up_challenge_take(user: User, credential: Mapping[str, Any]) -> str:
    """The challenge the credential answers, when it is one of `user`'s open step-up
    challenges (taken: it cannot be answered twice); "" otherwise."""
    try:
        client_data = json.loads(_b64url_decode(credential["response"]["clientDataJSON"]))
        answered = _b64url_decode(client_data["challenge"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return ""
    if not answered:
        return ""
    try:
        taken = get_redis_connection("default").getdel(_step_up_key(user, answered))
    except RedisError as exc:
        logger.error("webauthn_challenge_unreadable", error=type(exc).__name__)
        raise ServiceUnavailableError(UNAVAILABLE) from None
    return base64.urlsafe_b64encode(answered).rstrip(b"=").decode() if taken else ""


def webauthn_assertion_verify(
    *, user: User, payload: Mapping[str, Any], challenge: MfaChallenge | None
) -> Factor:
    """The verifier of method "webauthn" (runs in `method_verify`'s transaction): the
    user's confirmed key the credential names, its sign count moved on; else 401."""
    credential = payload.get("credential")
    if not isinstance(credential, dict):
        raise ValidationError.for_field("credential", CREDENTIAL_REQUIRED)
    credential_id = credential_id_of(credential)
    if challenge is not None:
        expected = challenge.webauthn_challenge
    else:
        expected = _step_up_challenge_take(user, credential)
    if not expected:
        raise UnauthorizedError(ASK_OPTIONS)
    factor = (
        Factor.objects.select_for_update()
        .filter(
            user=user,
            kind=Factor.Kind.WEBAUTHN,
            confirmed_at__isnull=False,
            credential_id=credential_id,
        )
        .first()
    )
    if factor is None:
        raise UnauthorizedError(NOT_REGISTERED)
    party = relying_party()
    try:
        sign_count = authentication_verify(
            credential=credential,
            expected_challenge=expected,
            rp_id=party.id,
            origins=party.origins,
            public_key=bytes(factor.public_key or b""),
            sign_count=factor.sign_count,
            # No `user_handle=`: the key was found among this user's own, and the handle
            # a discoverable key returns is not signed, so comparing it adds nothing,
            # while a tenant imported under another schema name would change it.
        )
    except UnauthorizedError as exc:
        if "sign count" in exc.message:
            # A clone of the key, or an assertion replayed: worth an operator's look.
            logger.warning(
                "webauthn_sign_count_not_grown", user_id=user.pk, factor_id=str(factor.pk)
            )
        raise
    factor.sign_count = sign_count
    factor.save(update_fields=["sign_count"])
    return factor


enrolment_register(
    "webauthn", begin=webauthn_registration_begin, confirm=webauthn_registration_finish
)
method_register("webauthn", amr="hwk", verify=webauthn_assertion_verify)


# ------------------------------------------------------------------ API


class WebauthnOptionsInput(InputSerializer):
    mfa_token = serializers.CharField(
        max_length=128,
        required=False,
        help_text="The sign-in's token; omit for a step-up (then send your access token).",
    )


class WebauthnOptionsOutput(serializers.Serializer[Any]):
    options = serializers.JSONField(
        help_text="PublicKeyCredentialRequestOptions for navigator.credentials.get() "
        "(binary members in base64url; PublicKeyCredential.parseRequestOptionsFromJSON)."
    )


class WebauthnOptionsApi(APIView):
    # The sign-in's mfa_token, or a step-up's access token (as /auth/mfa/verify).
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="mfa_webauthn_options",
        request=WebauthnOptionsInput,
        responses={
            200: WebauthnOptionsOutput,
            401: OpenApiResponse(description="The mfa_token is no longer valid, or no token"),
            409: OpenApiResponse(description="The user has no security key"),
            503: OpenApiResponse(description="The step-up challenge cannot be kept"),
        },
        description="Assertion options for the user's security keys: pass them to "
        "navigator.credentials.get(), then send its answer to POST /api/v1/auth/mfa/verify "
        'with method "webauthn". With `mfa_token`: for that sign-in; without, and with an '
        "access token: for a step-up.",
        tags=["mfa"],
    )
    def post(self, request: Request) -> Response:
        data = validated(WebauthnOptionsInput, request.data)
        if data.get("mfa_token"):
            options = webauthn_sign_in_options(mfa_token=data["mfa_token"])
        elif isinstance(request.user, User):
            options = webauthn_step_up_options(user=request.user)
        else:
            raise UnauthorizedError("Send the sign-in's mfa_token, or an access token.")
        return Response({"options": options})
