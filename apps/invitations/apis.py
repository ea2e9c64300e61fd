"""/api/v1/invitations (users.manage, held everywhere) and the public steps that need no
account yet: accepting an invitation, signing up, verifying the signed-up address."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import limits
from apps.accounts.models import normalize_email
from apps.accounts.requests import request_user
from apps.accounts.serializers import MessageOutput, TokenPairOutput
from apps.accounts.services.sessions import ClientInfo
from apps.core.errors import ValidationError
from apps.core.openapi import documented_error
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.invitations import selectors, services, signup
from apps.invitations.serializers import (
    EmailVerifyInput,
    InvitationAcceptInput,
    InvitationCreateInput,
    InvitationFilterInput,
    InvitationOutput,
    SignupInput,
)
from apps.organizations.models import Organization
from apps.rbac.drf import HasPermission
from apps.rbac.grants import require

_tag = ["invitations"]
SIGNUP_REQUESTED = (
    "If this address can sign up, a link to verify it is on its way; sign in once you "
    "have followed it."
)
_REFUSED = documented_error(
    "users.manage everywhere is needed, and for roles the reach to grant them (roles.manage "
    "and every permission of the role, everywhere); for an organization organizations.manage "
    "there"
)


def _organization(organization_id: int | None) -> Organization | None:
    if organization_id is None:
        return None
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise ValidationError.for_field("organization_id", "No such organization.")
    return organization


class InvitationsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "users.manage", "POST": "users.manage"}

    @extend_schema(
        operation_id="invitations_list",
        parameters=[InvitationFilterInput],
        responses={200: paginated(InvitationOutput)},
        description="Newest first; `status` filters (expired: open but past its expiry).",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        require(request_user(request), "users.manage")  # invitees are in no subtree yet
        filters = validated(InvitationFilterInput, request.query_params.dict())
        queryset = selectors.invitation_list(
            status=filters.get("status"), search=filters.get("search")
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(InvitationOutput(page, many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        operation_id="invitations_create",
        request=InvitationCreateInput,
        responses={
            201: InvitationOutput,
            403: _REFUSED,
            409: OpenApiResponse(
                description="A user has the address, or a pending invitation is open for it"
            ),
        },
        description="The link is mailed from a worker once this commits; it works once, "
        "for INVITATION_EXPIRY_HOURS.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(InvitationCreateInput, request.data)
        invitation = services.invitation_create(
            actor=request_user(request),
            email=data["email"],
            roles=services.roles_resolve(data["roles"]),
            organization=_organization(data["organization_id"]),
        )
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)


class InvitationResendApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": "users.manage"}

    @extend_schema(
        operation_id="invitations_resend",
        request=None,
        responses={
            200: InvitationOutput,
            403: _REFUSED,
            409: OpenApiResponse(description="Accepted or revoked, or the address is a user's"),
        },
        description="A new link, valid for a full expiry period; the old one stops working.",
        tags=_tag,
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        invitation = selectors.invitation_get(invitation_id=invitation_id)
        invitation = services.invitation_resend(actor=request_user(request), invitation=invitation)
        return Response(InvitationOutput(invitation).data)


class InvitationRevokeApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": "users.manage"}

    @extend_schema(
        operation_id="invitations_revoke",
        request=None,
        responses={
            200: InvitationOutput,
            403: _REFUSED,
            409: OpenApiResponse(description="Already accepted"),
        },
        tags=_tag,
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        invitation = selectors.invitation_get(invitation_id=invitation_id)
        invitation = services.invitation_revoke(actor=request_user(request), invitation=invitation)
        return Response(InvitationOutput(invitation).data)


class InvitationAcceptApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="invitations_accept",
        request=InvitationAcceptInput,
        responses={
            200: TokenPairOutput,
            403: documented_error(
                "The tenant requires single sign-on: accept by signing in through its "
                "identity provider with the invited address",
                codes=["SSO_REQUIRED"],
            ),
            409: documented_error(
                "The address became a user's, or the inviter can no longer grant what the "
                "invitation offers",
                codes=["INVITATION_STALE"],
            ),
            422: documented_error(
                "Bad input, or a token that opens no pending invitation (unknown, expired, "
                "revoked, used or replaced by a resend)",
                codes=["INVITATION_INVALID"],
            ),
        },
        description="Creates the invited user with this password and signs them in.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(InvitationAcceptInput, request.data)
        limits.count_and_check(request._request, "invitation_ip", limits.ip_of(request._request))
        pair = services.invitation_accept(
            token=data["token"],
            password=data["password"],
            full_name=data["full_name"],
            client=ClientInfo.of(request._request),
        )
        return Response(pair.as_response())


class SignupApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_signup",
        request=SignupInput,
        responses={
            202: MessageOutput,
            403: documented_error(
                "Sign-up is off in this tenant, or it requires single sign-on",
                codes=["SIGNUP_DISABLED", "SSO_REQUIRED"],
            ),
        },
        description="Where the tenant allows it (settings.signup). The same answer whether or "
        "not the address has an account; the account signs in once the mailed link is "
        "followed (`/auth/email/verify`).",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = validated(SignupInput, request.data)
        email = normalize_email(data["email"])
        limits.count_and_check(request._request, "signup_ip", limits.ip_of(request._request))
        limits.count_and_check(request._request, "signup_account", email)
        signup.signup_request(email=email, password=data["password"], full_name=data["full_name"])
        return Response({"detail": SIGNUP_REQUESTED}, status=status.HTTP_202_ACCEPTED)


class EmailVerifyApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_email_verify",
        request=EmailVerifyInput,
        responses={200: MessageOutput},
        description="Verify a signed-up address by the mailed link's token (422 on `token` "
        "when it is invalid, expired or used); the account can sign in from then on.",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = validated(EmailVerifyInput, request.data)
        limits.count_and_check(request._request, "invitation_ip", limits.ip_of(request._request))
        user = signup.email_verify(token=data["token"])
        return Response({"detail": f"{user.email} is verified; sign in with it."})
