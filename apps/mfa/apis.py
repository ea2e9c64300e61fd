"""/api/v1/auth/mfa/...: a user's second factors, recovery codes, and answering a sign-in
challenge (or stepping up a signed-in session). On every host: platform operators have
factors too."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import limits
from apps.accounts.models import User
from apps.accounts.requests import request_user
from apps.accounts.selectors import user_get
from apps.accounts.serializers import TokenPairOutput
from apps.accounts.services.sessions import ClientInfo
from apps.accounts.tokens import Claims
from apps.core.errors import UnauthorizedError
from apps.core.serializers import validated
from apps.mfa.selectors import factor_list
from apps.mfa.serializers import (
    ConfirmedOutput,
    EnrolConfirmInput,
    EnrolInput,
    FactorConfirmInput,
    FactorCreatedOutput,
    FactorCreateInput,
    FactorOutput,
    RecoveryCodesOutput,
    VerifyInput,
)
from apps.mfa.services import factors, signin
from apps.mfa.services.challenges import challenge_get
from apps.mfa.services.factors import Confirmed
from apps.mfa.step_up import step_up_require, step_up_response
from apps.rbac.drf import HasPermission

_tag = ["mfa"]


def _payload(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in ("code", "credential") if key in data}


def _confirmed(confirmed: Confirmed) -> dict[str, Any]:
    return {
        "factor": FactorOutput(confirmed.factor).data,
        "recovery_codes": confirmed.recovery_codes,
    }


def _rate_account(user_id: int) -> str:
    # One log per account for sign-in challenges and step-ups alike.
    return f"user:{user_id}"


class FactorsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="mfa_factors_list", responses={200: FactorOutput(many=True)}, tags=_tag
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response(FactorOutput(factor_list(user=user), many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        operation_id="mfa_factors_create",
        request=FactorCreateInput,
        responses={
            201: FactorCreatedOutput,
            403: step_up_response("A further factor without a recent second factor"),
            409: OpenApiResponse(description="Too many factors"),
            422: OpenApiResponse(description="Unsupported factor type"),
        },
        description="Start enrolling a factor; it counts once confirmed. For TOTP the answer "
        "holds the secret (as an otpauth:// URI, a QR code and in base32), shown this once.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        step_up_require(request, enrolling=True)
        data = validated(FactorCreateInput, request.data)
        user = request_user(request)
        factor, setup = factors.factor_enrol(user=user, kind=data["type"], name=data["name"])
        return Response({"id": str(factor.pk), **setup}, status=status.HTTP_201_CREATED)


class FactorDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="mfa_factors_delete",
        responses={204: None, 403: step_up_response("No recent second factor")},
        tags=_tag,
    )
    def delete(self, request: Request, factor_id: str) -> Response:
        step_up_require(request)
        factors.factor_delete(user=request_user(request), factor_id=str(factor_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FactorConfirmApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="mfa_factors_confirm",
        request=FactorConfirmInput,
        responses={200: ConfirmedOutput, 409: OpenApiResponse(description="Already confirmed")},
        description="Confirm a factor with its first code; 422 on `code` when wrong. The "
        "first factor of a user also brings a set of recovery codes, shown this once.",
        tags=_tag,
    )
    def post(self, request: Request, factor_id: str) -> Response:
        data = validated(FactorConfirmInput, request.data)
        confirmed = factors.factor_confirm(
            user=request_user(request), factor_id=str(factor_id), payload=_payload(data)
        )
        return Response(_confirmed(confirmed))


class RecoveryCodesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="mfa_recovery_codes_regenerate",
        request=None,
        responses={
            200: RecoveryCodesOutput,
            403: step_up_response("No recent second factor"),
            409: OpenApiResponse(description="No second factor yet"),
        },
        description="A new set of 10 recovery codes; the previous set stops working.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        step_up_require(request)
        codes = factors.recovery_codes_regenerate(user=request_user(request))
        return Response({"recovery_codes": codes})


class VerifyApi(APIView):
    # Either the sign-in's mfa_token (no access token yet), or a step-up of a signed-in
    # session (its access token as Bearer).
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="mfa_verify",
        request=VerifyInput,
        responses={
            200: TokenPairOutput,
            401: OpenApiResponse(description="Wrong code, or the mfa_token is no longer valid"),
            409: OpenApiResponse(description="The sign-in must enrol a factor first"),
            429: OpenApiResponse(description="Too many attempts on this account"),
        },
        description="With `mfa_token`: complete the sign-in it started (single use; it expires "
        "and dies after a few wrong answers). Without, and with an access token: a step-up of "
        "that session, whose new token pair has `auth_time` now and the method in `amr`.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(VerifyInput, request.data)
        client = ClientInfo.of(request._request)
        if data.get("mfa_token"):
            challenge = challenge_get(mfa_token=data["mfa_token"])
            account = _rate_account(challenge.user_id)
            entry = limits.mfa_check(request._request, account)
            pair = signin.mfa_sign_in_complete(
                mfa_token=data["mfa_token"],
                method=data["method"],
                payload=_payload(data),
                client=client,
            )
        else:
            if not isinstance(request.user, User) or not isinstance(request.auth, Claims):
                raise UnauthorizedError("Send the sign-in's mfa_token, or an access token.")
            account = _rate_account(request.user.pk)
            entry = limits.mfa_check(request._request, account)
            pair = signin.mfa_step_up(
                user=request.user,
                session_id=request.auth.session_id,
                method=data["method"],
                payload=_payload(data),
            )
        limits.mfa_succeeded(account, entry)
        return Response(pair.as_response())


class EnrolApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="mfa_enrol",
        request=EnrolInput,
        responses={
            201: FactorCreatedOutput,
            401: OpenApiResponse(description="Not the token of a sign-in that must enrol"),
        },
        description="For a sign-in answered with `enrolment_required`: start enrolling a "
        "factor with its mfa_token (the only thing that token can do besides verify).",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(EnrolInput, request.data)
        factor, setup = signin.mfa_enrol_with_token(
            mfa_token=data["mfa_token"], kind=data["type"], name=data["name"]
        )
        return Response({"id": str(factor.pk), **setup}, status=status.HTTP_201_CREATED)


class EnrolConfirmApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="mfa_enrol_confirm",
        request=EnrolConfirmInput,
        responses={
            200: ConfirmedOutput,
            401: OpenApiResponse(description="Not the token of a sign-in that must enrol"),
        },
        description="Confirm the factor enrolled with the mfa_token; then complete the "
        "sign-in at POST /api/v1/auth/mfa/verify with the next code (or a recovery code).",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(EnrolConfirmInput, request.data)
        confirmed = signin.mfa_enrol_confirm_with_token(
            mfa_token=data["mfa_token"], factor_id=str(data["factor_id"]), payload=_payload(data)
        )
        return Response(_confirmed(confirmed))


class UserMfaResetApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"DELETE": "users.manage"}

    @extend_schema(
        operation_id="mfa_user_reset",
        responses={
            204: None,
            403: step_up_response(),
            422: OpenApiResponse(description="Your own account"),
        },
        description="Remove every second factor and recovery code of a user who lost them "
        "(users.manage for this user, and every permission they hold: 403 otherwise). The "
        "user is told by a security notice.",
        tags=_tag,
    )
    def delete(self, request: Request, user_id: int) -> Response:
        actor = request_user(request)
        user = user_get(actor=actor, user_id=user_id, permission="users.manage")
        step_up_require(request)
        factors.user_mfa_reset(user=user, by=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
