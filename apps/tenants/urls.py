from django.urls import path

from apps.tenants.apis import TenantDetailApi, TenantListCreateApi, TenantRestoreApi

app_name = "tenants"

urlpatterns = [
    path("tenants", TenantListCreateApi.as_view(), name="list"),
    path("tenants/<int:tenant_id>", TenantDetailApi.as_view(), name="detail"),
    path("tenants/<int:tenant_id>/restore", TenantRestoreApi.as_view(), name="restore"),
]
