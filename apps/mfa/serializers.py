from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer, OutputSerializer
from apps.mfa.models import Factor

_CODE_HELP = "The 6-digit code of the authenticator app, or a recovery code."
_CREDENTIAL_HELP = "WebAuthn: the credential the browser returned (JSON)."


class FactorOutput(OutputSerializer[Factor]):
    id = serializers.UUIDField(read_only=True)
    kind = serializers.CharField(read_only=True, help_text='"totp" or "webauthn".')
    name = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    confirmed_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="null until confirmed: it does not count yet."
    )
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class FactorCreateInput(InputSerializer):
    type = serializers.CharField(max_length=16, help_text='"totp" (or "webauthn" when enabled).')
    name = serializers.CharField(max_length=64, help_text='A label of your choice, e.g. "Phone".')


class FactorCreatedOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    otpauth_uri = serializers.CharField(
        required=False, help_text="TOTP: the otpauth:// URI an authenticator app reads."
    )
    qr_svg = serializers.CharField(required=False, help_text="TOTP: that URI as a QR code (SVG).")
    secret = serializers.CharField(
        required=False, help_text="TOTP: the secret (base32) for typing in; shown this once."
    )


class FactorConfirmInput(InputSerializer):
    code = serializers.CharField(max_length=32, required=False, help_text=_CODE_HELP)
    credential = serializers.JSONField(required=False, help_text=_CREDENTIAL_HELP)


class ConfirmedOutput(serializers.Serializer[Any]):
    factor = FactorOutput()
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="With the first factor: the recovery codes, shown this once; else null.",
    )


class RecoveryCodesOutput(serializers.Serializer[Any]):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Shown this once; each works once."
    )


class VerifyInput(InputSerializer):
    mfa_token = serializers.CharField(
        max_length=128,
        required=False,
        help_text="The sign-in's token; omit for a step-up (then send your access token).",
    )
    method = serializers.CharField(max_length=32, help_text='"totp", "recovery_code", "webauthn".')
    code = serializers.CharField(max_length=32, required=False, help_text=_CODE_HELP)
    credential = serializers.JSONField(required=False, help_text=_CREDENTIAL_HELP)


class EnrolInput(InputSerializer):
    mfa_token = serializers.CharField(max_length=128)
    type = serializers.CharField(max_length=16)
    name = serializers.CharField(max_length=64)


class EnrolConfirmInput(InputSerializer):
    mfa_token = serializers.CharField(max_length=128)
    factor_id = serializers.UUIDField()
    code = serializers.CharField(max_length=32, required=False, help_text=_CODE_HELP)
    credential = serializers.JSONField(required=False, help_text=_CREDENTIAL_HELP)


class MfaRequiredOutput(serializers.Serializer[Any]):
    mfa_required = serializers.BooleanField(help_text="Always true.")
    mfa_token = serializers.CharField(help_text="Answer it at POST /api/v1/auth/mfa/verify.")
    factors = serializers.ListField(
        child=serializers.CharField(),
        help_text='What the user can answer with: "totp", "webauthn", "recovery_code".',
    )
    expires_in = serializers.IntegerField(help_text="Seconds the token stays valid.")
    enrolment_required = serializers.BooleanField(
        required=False,
        help_text="true: the tenant requires a second factor the user has not enrolled; the "
        "token may only enrol one (POST /api/v1/auth/mfa/enrol).",
    )
