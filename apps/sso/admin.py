"""Identity providers in the tenant's admin; the client secret can be set, never read.

Creating, changing and deleting a provider go through `apps.sso.services.providers`
(the API's path: discovery fetched, redirect URIs checked, the audit row with the
secret only marked "(changed)"); unlinking an external identity is `identity_unlink`
(audited)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin_site import ServiceAdminMixin
from apps.core.admin_widgets import JSONListField, no_whitespace
from apps.sso import oidc
from apps.sso.models import ExternalIdentity, IdentityProvider
from apps.sso.services.identities import identity_unlink
from apps.sso.services.providers import provider_create, provider_delete, provider_update

# Form fields the services take under the same name.
_PLAIN_FIELDS = (
    "slug", "name", "issuer", "client_id", "scopes", "claim_email", "claim_name",
    "claim_username", "allowed_email_domains", "allow_email_linking", "jit_enabled",
    "sso_required", "redirect_uris", "enabled",
)  # fmt: skip


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

    def service_data(self) -> dict[str, Any]:
        """The form's values as provider_create / provider_update take them."""
        cleaned = self.cleaned_data
        data: dict[str, Any] = {name: cleaned[name] for name in _PLAIN_FIELDS if name in cleaned}
        if "jit_organization" in cleaned:
            organization = cleaned["jit_organization"]
            data["jit_organization_id"] = organization.pk if organization else None
        if "jit_roles" in cleaned:
            data["jit_role_ids"] = [role.pk for role in cleaned["jit_roles"]]
        if "break_glass_users" in cleaned:
            data["break_glass_user_ids"] = [user.pk for user in cleaned["break_glass_users"]]
        if cleaned.get("client_secret"):
            data["client_secret"] = cleaned["client_secret"]
        return data


@admin.register(IdentityProvider)
class IdentityProviderAdmin(ServiceAdminMixin, admin.ModelAdmin[IdentityProvider]):
    form = IdentityProviderForm
    list_display = ["name", "slug", "issuer", "enabled", "sso_required", "jit_enabled"]
    search_fields = ["name", "slug", "issuer"]
    # Picked by searching (names and addresses, live users only), not from every row.
    autocomplete_fields = ["jit_roles", "jit_organization", "break_glass_users"]
    readonly_fields = ["metadata", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.readonly_fields)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through provider_delete
        return actions

    def save_model(
        self, request: HttpRequest, obj: IdentityProvider, form: Any, change: bool
    ) -> None:
        data = form.service_data()
        if change:
            saved = provider_update(provider=IdentityProvider.objects.get(pk=obj.pk), data=data)
        else:
            saved = provider_create(data=data)
        obj.pk, obj.metadata = saved.pk, saved.metadata
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the roles and break-glass users were set by the service, checked

    def delete_model(self, request: HttpRequest, obj: IdentityProvider) -> None:
        provider_delete(provider=obj)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(ServiceAdminMixin, admin.ModelAdmin[ExternalIdentity]):
    """Links are made by signing in; here they are read and can be removed ("unlink")."""

    list_display = ["user", "provider", "subject", "email", "last_login_at"]
    list_select_related = ["user", "provider"]
    search_fields = ["user__email", "email", "subject"]
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

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ExternalIdentity) -> None:
        identity_unlink(identity=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExternalIdentity]) -> None:
        for identity in queryset.select_related("provider"):
            identity_unlink(identity=identity)
