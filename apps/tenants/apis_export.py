"""Tenant exports on the public host, for platform operators: ask for one, follow it, download it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.requests import request_user
from apps.core.openapi import documented_error
from apps.rbac.drf import IsPlatformOperator
from apps.tenants import exports, selectors, tasks
from apps.tenants.models import TenantExport


class TenantExportOutput(serializers.ModelSerializer[TenantExport]):
    tenant_id = serializers.IntegerField(allow_null=True, read_only=True)
    counts = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="Rows per model."
    )
    requested_by = serializers.SerializerMethodField()
    archive_url = serializers.SerializerMethodField(
        help_text="Where the archive is downloaded (operators only), once `status` is done."
    )

    class Meta:
        model = TenantExport
        fields = [
            "id", "tenant_id", "tenant_slug", "status", "requested_by", "created_at",
            "started_at", "finished_at", "size", "sha256", "counts", "error", "archive_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_requested_by(self, export: TenantExport) -> str | None:
        user = export.requested_by
        return user.email if user is not None else None

    def get_archive_url(self, export: TenantExport) -> str | None:
        if export.status != TenantExport.Status.DONE or export.tenant_id is None:
            return None
        return reverse(
            "tenants:export-archive",
            kwargs={"tenant_id": export.tenant_id, "export_id": export.pk},
            urlconf=settings.PUBLIC_SCHEMA_URLCONF,
        )


class TenantExportCreateApi(APIView):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="tenants_exports_create",
        request=None,
        responses={
            202: TenantExportOutput,
            503: documented_error("The job queue is unavailable: nothing was queued"),
        },
        description=(
            "Start an export of the tenant's data: a worker writes the archive (a zip of "
            "JSON Lines per model with a manifest). Follow it at the returned id."
        ),
        tags=["tenants"],
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        export = tasks.tenant_export_request(tenant=tenant, requested_by=request_user(request))
        return Response(TenantExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


class TenantExportDetailApi(APIView):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="tenants_exports_retrieve",
        responses={200: TenantExportOutput},
        tags=["tenants"],
    )
    def get(self, request: Request, tenant_id: int, export_id: uuid.UUID) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        export = exports.tenant_export_get(tenant=tenant, export_id=export_id)
        return Response(TenantExportOutput(export).data)


class _ErrorsAsJson(BaseContentNegotiation):
    """The archive is sent whatever the client accepts; errors are JSON envelopes (the only
    renderer), so `Accept: application/zip` is no 406."""

    def select_parser(self, request: Request, parsers: Iterable[Any]) -> Any:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class TenantExportArchiveApi(APIView):
    permission_classes = [IsPlatformOperator]
    content_negotiation_class = _ErrorsAsJson

    @extend_schema(
        operation_id="tenants_exports_archive",
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The archive, streamed."
            ),
            409: documented_error("The export is not done (queued, running or failed)"),
        },
        description="Download a finished export's archive (audited).",
        tags=["tenants"],
    )
    def get(self, request: Request, tenant_id: int, export_id: uuid.UUID) -> FileResponse:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        export = exports.tenant_export_get(tenant=tenant, export_id=export_id)
        path = exports.tenant_export_archive(export=export)
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"tenant-{export.tenant_slug}-{export.pk}.zip",
            content_type="application/zip",
        )
