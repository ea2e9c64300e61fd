"""Identity providers in the tenant's admin; the client secret can be set, never read."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import URLValidator
from django.http import HttpRequest

from apps.core.admin_widgets import JSONListField, no_whitespace
from apps.sso import oidc
from apps.sso.crypto import secret_encrypt
from apps.sso.models import ExternalIdentity, IdentityProvider


class IdentityProviderForm(forms.ModelForm[IdentityProvider]):
    issuer = forms.URLField(max_length=500, assume_scheme="https")
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the current secret.",
    )
    scopes = JSONListField(
        max_items=30, item_max_length=100, item_validators=[no_whitespace], label="Scopes"
    )
    allowed_email_domains = JSONListField(
        max_items=100,
        item_max_length=253,
        item_validators=[no_whitespace],
        lowercase=True,
        help_text="Empty: any domain.",
    )
    redirect_uris = JSONListField(
        max_items=50,
        item_max_length=1000,
        item_validators=[URLValidator(schemes=["http", "https"])],
        label="Redirect URIs",
        help_text="Where the client may be sent back to (exact match).",
    )

    class Meta:
        model = IdentityProvider
        fields = [
            "slug", "name", "issuer", "client_id", "client_secret", "scopes", "claim_email",
            "claim_name", "claim_username", "allowed_email_domains", "allow_email_linking",
            "jit_enabled", "jit_roles", "jit_organization", "sso_required", "break_glass_users",
            "redirect_uris", "enabled",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        issuer = cleaned.get("issuer")
        if issuer:
            try:
                self.instance.metadata = oidc.discovery_fetch(issuer)
            except oidc.ProviderError as exc:
                self.add_error("issuer", f"Discovery failed: {exc.reason} {exc.detail}".strip())
        return cleaned

    def save(self, commit: bool = True) -> IdentityProvider:
        secret = self.cleaned_data.get("client_secret")
        if secret:
            self.instance.client_secret_encrypted = secret_encrypt(secret)
        return super().save(commit=commit)


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin[IdentityProvider]):
    form = IdentityProviderForm
    list_display = ["name", "slug", "issuer", "enabled", "sso_required", "jit_enabled"]
    filter_horizontal = ["jit_roles", "break_glass_users"]
    readonly_fields = ["metadata", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.readonly_fields)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin[ExternalIdentity]):
    list_display = ["user", "provider", "subject", "email", "last_login_at"]
    list_select_related = ["user", "provider"]
    readonly_fields = [
        "provider",
        "issuer",
        "subject",
        "user",
        "email",
        "created_at",
        "last_login_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
