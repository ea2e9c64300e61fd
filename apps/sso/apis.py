"""/api/v1/identity-providers (tenant.manage) and the sign-in flow /api/v1/auth/oidc/..."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import limits
from apps.accounts.serializers import TokenPairOutput
from apps.accounts.services.sessions import ClientInfo
from apps.core.errors import NotFoundError
from apps.core.openapi import documented_error
from apps.core.serializers import validated
from apps.mfa.serializers import MfaRequiredOutput
from apps.mfa.step_up import step_up_require, step_up_response
from apps.rbac.drf import HasPermission
from apps.sso import selectors
from apps.sso.models import IdentityProvider
from apps.sso.serializers import (
    AuthorizeInput,
    CallbackInput,
    ExchangeInput,
    ProviderCreateInput,
    ProviderOutput,
    ProviderUpdateInput,
)
from apps.sso.services import providers, signin

_providers = ["identity-providers"]
_auth = ["auth"]


def _provider(provider_id: int) -> IdentityProvider:
    provider = selectors.provider_list().filter(pk=provider_id).first()
    if provider is None:
        raise NotFoundError("Identity provider not found")
    return provider


class IdentityProvidersApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "tenant.manage", "POST": "tenant.manage"}

    @extend_schema(
        operation_id="identity_providers_list",
        responses={200: ProviderOutput(many=True)},
        tags=_providers,
    )
    def get(self, request: Request) -> Response:
        return Response(ProviderOutput(selectors.provider_list(), many=True).data)

    @extend_schema(
        operation_id="identity_providers_create",
        request=ProviderCreateInput,
        responses={
            201: ProviderOutput,
            403: step_up_response(),
            409: OpenApiResponse(description="The slug is taken"),
            422: OpenApiResponse(description="Invalid, or the issuer's discovery failed"),
        },
        description="The issuer's discovery document is fetched and checked. "
        "The client secret is write-only.",
        tags=_providers,
    )
    def post(self, request: Request) -> Response:
        step_up_require(request)
        data = validated(ProviderCreateInput, request.data)
        provider = providers.provider_create(data=data)
        return Response(ProviderOutput(_provider(provider.pk)).data, status=status.HTTP_201_CREATED)


class IdentityProviderDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {
        "GET": "tenant.manage",
        "PATCH": "tenant.manage",
        "DELETE": "tenant.manage",
    }

    @extend_schema(
        operation_id="identity_providers_get", responses={200: ProviderOutput}, tags=_providers
    )
    def get(self, request: Request, provider_id: int) -> Response:
        return Response(ProviderOutput(_provider(provider_id)).data)

    @extend_schema(
        operation_id="identity_providers_update",
        request=ProviderUpdateInput,
        responses={
            200: ProviderOutput,
            403: step_up_response(),
            409: OpenApiResponse(description="The slug is taken"),
        },
        tags=_providers,
    )
    def patch(self, request: Request, provider_id: int) -> Response:
        step_up_require(request)
        provider = _provider(provider_id)
        data = validated(ProviderUpdateInput, request.data)
        providers.provider_update(provider=provider, data=data)
        return Response(ProviderOutput(_provider(provider_id)).data)

    @extend_schema(
        operation_id="identity_providers_delete",
        responses={204: None, 403: step_up_response()},
        tags=_providers,
    )
    def delete(self, request: Request, provider_id: int) -> Response:
        step_up_require(request)
        providers.provider_delete(provider=_provider(provider_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def callback_uri(request: Request, provider: str) -> str:
    path = reverse("sso-callback", kwargs={"provider": provider})
    return f"{settings.PLATFORM_URL_SCHEME}://{request.get_host()}{path}"


class OidcAuthorizeApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_oidc_authorize",
        parameters=[OpenApiParameter("redirect_uri", str, required=True)],
        responses={
            302: OpenApiResponse(description="To the provider"),
            422: OpenApiResponse(description="redirect_uri not allowed"),
        },
        tags=_auth,
    )
    def get(self, request: Request, provider: str) -> HttpResponseRedirect:
        data = validated(AuthorizeInput, request.query_params.dict())
        limits.count_and_check(request._request, "sso_ip", limits.ip_of(request._request))
        url = signin.sso_login_begin(
            provider_slug=provider,
            redirect_uri=data["redirect_uri"],
            callback_uri=callback_uri(request, provider),
            client=ClientInfo.of(request._request),
        )
        return HttpResponseRedirect(url)


class OidcCallbackApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_oidc_callback",
        parameters=[
            OpenApiParameter("code", str),
            OpenApiParameter("state", str),
            OpenApiParameter("error", str),
        ],
        responses={
            302: OpenApiResponse(description="To the client: ?code=<one-time code> or ?error="),
            400: documented_error(
                "Invalid, expired or replayed state", codes=["SSO_STATE_INVALID"]
            ),
        },
        tags=_auth,
    )
    def get(self, request: Request, provider: str) -> HttpResponseRedirect:
        data = validated(CallbackInput, request.query_params.dict())
        limits.count_and_check(request._request, "sso_ip", limits.ip_of(request._request))
        outcome = signin.sso_login_complete(
            provider_slug=provider,
            state=data["state"],
            code=data["code"],
            error=data["error"],
            callback_uri=callback_uri(request, provider),
            client=ClientInfo.of(request._request),
        )
        return HttpResponseRedirect(outcome.redirect_to)


class OidcExchangeApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_oidc_exchange",
        request=ExchangeInput,
        responses={
            200: PolymorphicProxySerializer(
                component_name="OidcExchangeOutput",
                serializers=[TokenPairOutput, MfaRequiredOutput],
                resource_type_field_name=None,
            ),
            401: OpenApiResponse(description="Invalid, expired or used code"),
        },
        description="The token pair; or, when the platform's second factor is due (the "
        "provider's MFA is not trusted, or it asserted none), "
        '`{"mfa_required": true, "mfa_token", ...}` as POST /auth/login answers it.',
        tags=_auth,
    )
    def post(self, request: Request) -> Response:
        data = validated(ExchangeInput, request.data)
        limits.count_and_check(request._request, "sso_ip", limits.ip_of(request._request))
        answer = signin.exchange_code_redeem(
            code=data["code"], client=ClientInfo.of(request._request)
        )
        return Response(answer.as_response())
