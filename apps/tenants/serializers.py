from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer
from apps.tenants.models import Domain, Tenant
from apps.tenants.validators import SLUG_MAX_LENGTH


class DomainOutput(serializers.ModelSerializer[Domain]):
    class Meta:
        model = Domain
        fields = ["domain", "is_primary"]


class TenantOutput(serializers.ModelSerializer[Tenant]):
    domains = DomainOutput(many=True, read_only=True)
    deleted_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Set while the tenant is pending deletion."
    )
    purge_after = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When a tenant pending deletion is dropped for good (TENANT_RETENTION_DAYS "
        "after `deleted_at`), unless restored before.",
    )

    class Meta:
        model = Tenant
        fields = [
            "id", "name", "slug", "schema_name", "is_active", "settings",
            "domains", "created_at", "updated_at", "deleted_at", "purge_after",
        ]  # fmt: skip
        read_only_fields = fields


class TenantCreateInput(InputSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=SLUG_MAX_LENGTH)
    admin_email = serializers.EmailField(max_length=254)
    admin_password = serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, max_length=128,
        help_text="Omit to have one generated; it is returned once in the response.",
    )  # fmt: skip
    admin_full_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    settings = serializers.JSONField(required=False, help_text='e.g. {"rate_limit": "1200/m"}')


class TenantUpdateInput(InputSerializer):
    name = serializers.CharField(required=False, max_length=200)
    is_active = serializers.BooleanField(required=False)
    settings = serializers.JSONField(required=False)


class TenantFilterInput(InputSerializer):
    search = serializers.CharField(required=False, max_length=100)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    deleted = serializers.BooleanField(
        required=False, default=False, help_text="true: the tenants pending deletion instead."
    )
    # Validated by the paginator; listed so they are not "unknown".
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class TenantDeleteInput(InputSerializer):
    now = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Drop the schema and every row at once instead of after the retention "
        "period: nothing can be restored. Needs `confirm`.",
    )
    confirm = serializers.CharField(
        required=False, max_length=SLUG_MAX_LENGTH, help_text="With `now`: the tenant's slug."
    )


class TenantAdminOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    username = serializers.CharField()


class TenantProvisionedOutput(serializers.Serializer[Any]):
    tenant = TenantOutput()
    admin = TenantAdminOutput()
    admin_password = serializers.CharField(
        allow_null=True,
        help_text="The generated password of the first admin, shown this once; null if you chose it.",
    )
    url = serializers.CharField(help_text="Where the tenant is reached.")


class OwnTenantUpdateInput(InputSerializer):
    """What a tenant's owners may change about their own tenant (not its active flag)."""

    name = serializers.CharField(required=False, max_length=200)
    settings = serializers.JSONField(
        required=False,
        help_text='e.g. {"rate_limit": "300/m"}: a rate limit no looser than the platform\'s.',
    )
