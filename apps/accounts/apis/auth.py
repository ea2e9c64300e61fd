"""POST /api/v1/auth/...: sign in, refresh, sign out, passwords, sessions. On every host."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import limits
from apps.accounts.models import normalize_email
from apps.accounts.requests import request_user
from apps.accounts.selectors import session_list
from apps.accounts.serializers import (
    EmailConfirmInput,
    LoginInput,
    MessageOutput,
    PasswordChangeInput,
    PasswordResetConfirmInput,
    PasswordResetInput,
    RefreshInput,
    RevokedOutput,
    SessionOutput,
    TokenPairOutput,
)
from apps.accounts.services import email_change, passwords, sessions
from apps.accounts.services.sessions import ClientInfo
from apps.accounts.tokens import Claims, InvalidToken, refresh_token_decode
from apps.core.openapi import documented_error
from apps.core.serializers import validated
from apps.mfa.serializers import MfaRequiredOutput
from apps.mfa.step_up import step_up_require, step_up_response

RESET_REQUESTED = (
    "If the address belongs to an account, a link to reset its password is on its way."
)

_tag = ["auth"]


def _current_session_id(request: Request) -> str | None:
    return request.auth.session_id if isinstance(request.auth, Claims) else None


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_login",
        request=LoginInput,
        responses={
            200: PolymorphicProxySerializer(
                component_name="LoginOutput",
                serializers=[TokenPairOutput, MfaRequiredOutput],
                resource_type_field_name=None,
            ),
            401: OpenApiResponse(description="Invalid email or password"),
            403: documented_error(
                "The tenant requires single sign-on: sign in through its identity provider; "
                "or a signed-up address is not verified yet",
                codes=["SSO_REQUIRED", "EMAIL_NOT_VERIFIED"],
            ),
        },
        description="The token pair; or, when a second factor is due, no tokens yet but "
        '`{"mfa_required": true, "mfa_token", "factors", "expires_in"}`: answer it at '
        "POST /api/v1/auth/mfa/verify.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(LoginInput, request.data)
        account = normalize_email(data["email"])
        # Every attempt counts against the address, and against the account as a failure
        # until it succeeds: a guessing run locks the account for a while.
        limits.login_check(request._request, account)
        answer = sessions.session_login(
            email=account, password=data["password"], client=ClientInfo.of(request._request)
        )
        # The password was right, also when a second factor is still due (its attempts are
        # counted apart: limits.mfa_check).
        limits.login_succeeded(request._request, account)
        return Response(answer.as_response())


class RefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_refresh",
        request=RefreshInput,
        responses={
            200: TokenPairOutput,
            401: OpenApiResponse(description="Invalid, used or revoked"),
        },
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(RefreshInput, request.data)
        limits.count_and_check(request._request, "refresh_ip", limits.ip_of(request._request))
        try:
            account = str(refresh_token_decode(data["refresh_token"]).user_id)
        except InvalidToken:
            account = None
        if account is not None:
            limits.count_and_check(request._request, "refresh_account", account)
        pair = sessions.session_refresh(
            refresh_token=data["refresh_token"], client=ClientInfo.of(request._request)
        )
        return Response(pair.as_response())


class LogoutApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_logout",
        request=RefreshInput,
        responses={
            200: RevokedOutput,
            401: OpenApiResponse(description="Not a valid refresh token of this tenant"),
        },
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(RefreshInput, request.data)
        return Response(
            {"revoked_sessions": sessions.session_logout(refresh_token=data["refresh_token"])}
        )


class LogoutAllApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout_all", request=None, responses={200: RevokedOutput}, tags=_tag
    )
    def post(self, request: Request) -> Response:
        user = request_user(request)
        return Response({"revoked_sessions": sessions.sessions_logout_all(user=user)})


class PasswordChangeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_password_change",
        request=PasswordChangeInput,
        responses={200: TokenPairOutput, 403: step_up_response("No recent second factor")},
        description="Ends every session and access token, then signs this device in again.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        step_up_require(request)
        data = validated(PasswordChangeInput, request.data)
        user = request_user(request)
        pair = passwords.password_change(
            user=user,
            old_password=data["old_password"],
            new_password=data["new_password"],
            client=ClientInfo.of(request._request),
        )
        return Response(pair.as_response())


class PasswordResetApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_password_reset",
        request=PasswordResetInput,
        responses={200: MessageOutput},
        description="Always the same answer, whether or not the address has an account.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(PasswordResetInput, request.data)
        email = normalize_email(data["email"])
        limits.count_and_check(request._request, "reset_ip", limits.ip_of(request._request))
        limits.count_and_check(request._request, "reset_account", email)
        passwords.password_reset_request(email=email, client=ClientInfo.of(request._request))
        return Response({"detail": RESET_REQUESTED})


class PasswordResetConfirmApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_password_reset_confirm",
        request=PasswordResetConfirmInput,
        responses={200: MessageOutput},
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(PasswordResetConfirmInput, request.data)
        limits.count_and_check(request._request, "reset_ip", limits.ip_of(request._request))
        passwords.password_reset_confirm(
            token=data["token"],
            new_password=data["new_password"],
            client=ClientInfo.of(request._request),
        )
        return Response({"detail": "Your password has been changed; sign in with it."})


class EmailConfirmApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_email_confirm",
        request=EmailConfirmInput,
        responses={
            200: MessageOutput,
            409: OpenApiResponse(description="A live user has taken the address since"),
        },
        description="Make the e-mail change the mailed link names (its token); 422 on `token` "
        "when the link is invalid, expired or voided by a newer request.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(EmailConfirmInput, request.data)
        limits.count_and_check(request._request, "reset_ip", limits.ip_of(request._request))
        user = email_change.email_change_confirm(token=data["token"])
        return Response({"detail": f"Your sign-in address is now {user.email}."})


class SessionsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_sessions_list", responses={200: SessionOutput(many=True)}, tags=_tag
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        context = {"current_session_id": _current_session_id(request)}
        return Response(SessionOutput(session_list(user=user), many=True, context=context).data)


class SessionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_sessions_revoke", responses={204: None}, tags=_tag)
    def delete(self, request: Request, session_id: str) -> Response:
        user = request_user(request)
        sessions.session_revoke(user=user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
