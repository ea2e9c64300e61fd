"""On a tenant's host: the tenant itself, for its owners."""

from django.urls import path

from apps.tenants.apis import OwnTenantApi

urlpatterns = [path("tenant", OwnTenantApi.as_view(), name="own-tenant")]
