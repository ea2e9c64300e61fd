from django.urls import path

from apps.tenants.apis import TenantDetailApi, TenantListCreateApi, TenantRestoreApi
from apps.tenants.apis_export import (
    TenantExportArchiveApi,
    TenantExportCreateApi,
    TenantExportDetailApi,
)

app_name = "tenants"

urlpatterns = [
    path("tenants", TenantListCreateApi.as_view(), name="list"),
    path("tenants/<int:tenant_id>", TenantDetailApi.as_view(), name="detail"),
    path("tenants/<int:tenant_id>/restore", TenantRestoreApi.as_view(), name="restore"),
    path("tenants/<int:tenant_id>/exports", TenantExportCreateApi.as_view(), name="exports"),
    path(
        "tenants/<int:tenant_id>/exports/<uuid:export_id>",
        TenantExportDetailApi.as_view(),
        name="export-detail",
    ),
    path(
        "tenants/<int:tenant_id>/exports/<uuid:export_id>/archive",
        TenantExportArchiveApi.as_view(),
        name="export-archive",
    ),
]
