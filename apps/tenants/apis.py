from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.openapi import documented_error
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.rbac.drf import HasPermission, IsPlatformOperator
from apps.tenants import lifecycle, selectors, services
from apps.tenants.links import tenant_url
from apps.tenants.serializers import (
    OwnTenantUpdateInput,
    TenantCreateInput,
    TenantDeleteInput,
    TenantFilterInput,
    TenantOutput,
    TenantProvisionedOutput,
    TenantUpdateInput,
)

_PENDING_DELETION = "The tenant is pending deletion: restore it first (CONFLICT)"


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
            search=filters.get("search"),
            is_active=filters.get("is_active"),
            deleted=filters["deleted"],
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TenantOutput(page, many=True).data)

    @extend_schema(
        operation_id="tenants_create",
        request=TenantCreateInput,
        responses={
            201: TenantProvisionedOutput,
            409: OpenApiResponse(
                description="The slug is taken, also by a tenant pending deletion (CONFLICT)"
            ),
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
            "url": tenant_url(result.domain.domain, request=request),
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
        responses={200: TenantOutput, 409: documented_error(_PENDING_DELETION)},
        description="Change name, settings or `is_active` (false deactivates: its hosts answer "
        "404). `settings` changes the keys it names, each one whole; null removes a key.",
        tags=["tenants"],
    )
    def patch(self, request: Request, tenant_id: int) -> Response:
        data = validated(TenantUpdateInput, request.data)
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        changes = {("settings_changes" if k == "settings" else k): v for k, v in data.items()}
        # Platform operators may set limits looser than the platform's (IsPlatformOperator).
        services.tenant_update(tenant=tenant, may_loosen_limits=True, **changes)
        return Response(TenantOutput(selectors.tenant_get(tenant_id=tenant_id)).data)

    @extend_schema(
        operation_id="tenants_delete",
        parameters=[TenantDeleteInput],
        responses={
            202: OpenApiResponse(
                TenantOutput,
                description="Deactivated now (its hosts answer 404); its schema and data are "
                "dropped at `purge_after` unless restored before.",
            ),
            204: OpenApiResponse(description="With `now`: dropped, schema and data, for good."),
            422: documented_error("`now` without `confirm` repeating the slug, or a bad parameter"),
            503: documented_error(
                "With `now`: the cache is unreachable, so nothing is dropped (SERVICE_UNAVAILABLE)"
            ),
        },
        description=(
            "Delete a tenant. By default it is deactivated at once and its schema is dropped "
            "TENANT_RETENTION_DAYS later (`POST .../restore` until then). "
            "`?now=true&confirm=<slug>` drops it at once. Its slug stays taken until the drop."
        ),
        tags=["tenants"],
    )
    def delete(self, request: Request, tenant_id: int) -> Response:
        options = validated(TenantDeleteInput, request.query_params.dict())
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        if options["now"]:
            lifecycle.require_deletion_confirmed(tenant=tenant, confirm=options.get("confirm"))
        pending = lifecycle.tenant_delete(tenant=tenant, now=options["now"])
        if pending is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = TenantOutput(selectors.tenant_get(tenant_id=tenant_id)).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TenantRestoreApi(APIView):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="tenants_restore",
        request=None,
        responses={200: TenantOutput},
        description="Undo a deletion before its schema is dropped: the tenant is active again "
        "with all its data. A tenant not pending deletion is returned unchanged.",
        tags=["tenants"],
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        lifecycle.tenant_restore(tenant=tenant)
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
            "may set no looser than the platform's: 422 otherwise). `settings` changes the "
            "keys it names, each one whole (`mfa` is one policy); null removes a key."
        ),
        tags=["tenant"],
    )
    def patch(self, request: Request) -> Response:
        data = validated(OwnTenantUpdateInput, request.data)
        tenant = selectors.tenant_get(tenant_id=request.tenant.pk)  # type: ignore[attr-defined]
        # Audited in this tenant's log and in the operators' (the service writes both).
        services.tenant_update(
            tenant=tenant,
            **({"name": data["name"]} if "name" in data else {}),
            **({"settings_changes": data["settings"]} if "settings" in data else {}),
        )
        return Response(TenantOutput(selectors.tenant_get(tenant_id=tenant.pk)).data)
