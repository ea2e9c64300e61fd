from django.urls import path

from apps.tenants.apis import TenantDetailApi, TenantListCreateApi

app_name = "tenants"

urlpatterns = [
    path("tenants", TenantListCreateApi.as_view(), name="list"),
    path("tenants/<int:tenant_id>", TenantDetailApi.as_view(), name="detail"),
]
