from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer
from apps.sso.models import IdentityProvider


class _ProviderFields(InputSerializer):
    slug = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=200)
    issuer = serializers.URLField(max_length=500)
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(
        max_length=1000, write_only=True, allow_blank=True, trim_whitespace=False
    )
    scopes = serializers.ListField(child=serializers.CharField(max_length=100), max_length=30)
    claim_email = serializers.CharField(max_length=100)
    claim_name = serializers.CharField(max_length=100, allow_blank=True)
    claim_username = serializers.CharField(max_length=100, allow_blank=True)
    allowed_email_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), max_length=100
    )
    allow_email_linking = serializers.BooleanField()
    jit_enabled = serializers.BooleanField()
    jit_role_ids = serializers.ListField(child=serializers.IntegerField(), max_length=50)
    jit_organization_id = serializers.IntegerField(allow_null=True)
    sso_required = serializers.BooleanField()
    break_glass_user_ids = serializers.ListField(child=serializers.IntegerField(), max_length=20)
    redirect_uris = serializers.ListField(
        child=serializers.URLField(max_length=1000), max_length=50
    )
    enabled = serializers.BooleanField()


class ProviderCreateInput(_ProviderFields):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("slug", "name", "issuer", "client_id"):
            self.fields[name].required = True
        for name, field in self.fields.items():
            if name not in ("slug", "name", "issuer", "client_id"):
                field.required = False


class ProviderUpdateInput(_ProviderFields):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class ProviderOutput(serializers.ModelSerializer[IdentityProvider]):
    has_client_secret = serializers.SerializerMethodField()
    jit_role_ids = serializers.SerializerMethodField()
    break_glass_user_ids = serializers.SerializerMethodField()
    jit_organization_id = serializers.IntegerField(allow_null=True, read_only=True)
    discovery = serializers.JSONField(source="metadata", read_only=True)

    class Meta:
        model = IdentityProvider
        fields = [
            "id", "slug", "name", "issuer", "client_id", "has_client_secret", "scopes",
            "claim_email", "claim_name", "claim_username", "allowed_email_domains",
            "allow_email_linking", "jit_enabled", "jit_role_ids", "jit_organization_id",
            "sso_required", "break_glass_user_ids", "redirect_uris", "enabled", "discovery",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_has_client_secret(self, obj: IdentityProvider) -> bool:
        return bool(obj.client_secret_encrypted)

    def get_jit_role_ids(self, obj: IdentityProvider) -> list[int]:
        return sorted(r.pk for r in obj.jit_roles.all())

    def get_break_glass_user_ids(self, obj: IdentityProvider) -> list[int]:
        return sorted(u.pk for u in obj.break_glass_users.all())


class AuthorizeInput(InputSerializer):
    redirect_uri = serializers.CharField(max_length=1000)


class CallbackInput(serializers.Serializer[Any]):
    # Providers add parameters of their own (session_state, iss, scope...): not refused.
    code = serializers.CharField(max_length=2000, required=False, default="")
    state = serializers.CharField(max_length=200, required=False, default="")
    error = serializers.CharField(max_length=200, required=False, default="")


class ExchangeInput(InputSerializer):
    code = serializers.CharField(max_length=200)
