from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.services import audit_record, changes_between
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.rbac.drf import HasPermission
from apps.tenants import selectors, services
from apps.tenants.permissions import IsPlatformOperator
from apps.tenants.serializers import (
    OwnTenantUpdateInput,
    TenantCreateInput,
    TenantFilterInput,
    TenantOutput,
    TenantProvisionedOutput,
    TenantUpdateInput,
)


def _tenant_url(request: Request, hostname: str) -> str:
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    suffix = "" if port in (default, "", None) else f":{port}"
    return f"{request.scheme}://{hostname}{suffix}/"


class TenantListCreateApi(APIView):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="tenants_list",
        parameters=[TenantFilterInput],
        responses={200: paginated(TenantOutput)},
        tags=["tenants"],
    )
    def get(self, request: Request) -> Response:
        filters = validated(TenantFilterInput, request.query_params.dict())
        queryset = selectors.tenant_list(
            search=filters.get("search"), is_active=filters.get("is_active")
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TenantOutput(page, many=True).data)

    @extend_schema(
        operation_id="tenants_create",
        request=TenantCreateInput,
        responses={
            201: TenantProvisionedOutput,
            409: OpenApiResponse(description="The slug is taken (CONFLICT)"),
        },
        tags=["tenants"],
    )
    def post(self, request: Request) -> Response:
        data = validated(TenantCreateInput, request.data)
        result = services.tenant_create(
            name=data["name"],
            slug=data["slug"],
            admin_email=data["admin_email"],
            admin_password=data.get("admin_password"),
            admin_full_name=data.get("admin_full_name", ""),
            tenant_settings=data.get("settings"),
        )
        body = {
            "tenant": TenantOutput(selectors.tenant_get(tenant_id=result.tenant.pk)).data,
            "admin": {
                "id": result.admin.pk,
                "email": result.admin.email,
                "username": result.admin.username,
            },
            "admin_password": result.generated_password,
            "url": _tenant_url(request, result.domain.domain),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TenantDetailApi(APIView):
    permission_classes = [IsPlatformOperator]

    @extend_schema(operation_id="tenants_retrieve", responses={200: TenantOutput}, tags=["tenants"])
    def get(self, request: Request, tenant_id: int) -> Response:
        return Response(TenantOutput(selectors.tenant_get(tenant_id=tenant_id)).data)

    @extend_schema(
        operation_id="tenants_update",
        request=TenantUpdateInput,
        responses={200: TenantOutput},
        description="Change name, settings or `is_active` (false deactivates: its hosts answer 404).",
        tags=["tenants"],
    )
    def patch(self, request: Request, tenant_id: int) -> Response:
        data = validated(TenantUpdateInput, request.data)
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        changes = {("tenant_settings" if k == "settings" else k): v for k, v in data.items()}
        # Platform operators may set limits looser than the platform's (IsPlatformOperator).
        services.tenant_update(tenant=tenant, may_loosen_limits=True, **changes)
        return Response(TenantOutput(selectors.tenant_get(tenant_id=tenant_id)).data)


class OwnTenantApi(APIView):
    """The tenant this host serves, for its owners (`tenant.manage`): name and settings."""

    permission_classes = [HasPermission]
    required_permissions = {"GET": "tenant.manage", "PATCH": "tenant.manage"}

    @extend_schema(operation_id="tenant_retrieve", responses={200: TenantOutput}, tags=["tenant"])
    def get(self, request: Request) -> Response:
        return Response(TenantOutput(selectors.tenant_get(tenant_id=request.tenant.pk)).data)  # type: ignore[attr-defined]

    @extend_schema(
        operation_id="tenant_update",
        request=OwnTenantUpdateInput,
        responses={200: TenantOutput},
        description=(
            "Rename the tenant or change its settings (e.g. its API rate limit, which owners "
            "may set no looser than the platform's: 422 otherwise)."
        ),
        tags=["tenant"],
    )
    def patch(self, request: Request) -> Response:
        data = validated(OwnTenantUpdateInput, request.data)
        tenant = selectors.tenant_get(tenant_id=request.tenant.pk)  # type: ignore[attr-defined]
        before = {"name": tenant.name, "settings": dict(tenant.settings)}
        services.tenant_update(
            tenant=tenant,
            **({"name": data["name"]} if "name" in data else {}),
            **({"tenant_settings": data["settings"]} if "settings" in data else {}),
        )
        after = {"name": tenant.name, "settings": dict(tenant.settings)}
        if changes := changes_between(before, after):
            audit_record(action="tenant.updated", target=tenant, changes=changes)
        return Response(TenantOutput(selectors.tenant_get(tenant_id=tenant.pk)).data)
