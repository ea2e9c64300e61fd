from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.password_validation import validate_password
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from apps.tenants import services
from apps.tenants.models import Domain, Tenant
from apps.tenants.validators import settings_errors, slug_errors


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0
    fields = ["domain", "is_primary", "created_at"]
    readonly_fields = ["created_at"]


class TenantCreationForm(forms.ModelForm[Tenant]):
    admin_email = forms.EmailField(
        help_text="The tenant's first admin (staff and superuser there)."
    )
    admin_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to have one generated and shown once.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "settings"]

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"]).strip().lower()
        problems = slug_errors(slug)
        if problems:
            raise forms.ValidationError(problems)
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError(services.SLUG_TAKEN)
        return slug

    def clean_admin_password(self) -> str:
        password = str(self.cleaned_data.get("admin_password") or "")
        if password:
            validate_password(password)
        return password

    def clean_settings(self) -> Any:
        value = self.cleaned_data.get("settings") or {}
        if problems := settings_errors(value):
            raise forms.ValidationError(problems)
        return value


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ["name", "slug", "schema_name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "schema_name", "domains__domain"]
    readonly_fields = ["schema_name", "created_at", "updated_at"]
    inlines = [DomainInline]
    actions = ["deactivate", "activate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).exclude(schema_name="public")

    def get_form(
        self, request: HttpRequest, obj: Tenant | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:
            return ["name", "slug", "settings", "admin_email", "admin_password"]
        return ["name", "slug", "schema_name", "is_active", "settings", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:
            return []
        return ["slug", "schema_name", "created_at", "updated_at"]

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> Any:
        return [DomainInline] if obj is not None else []

    def save_model(
        self, request: HttpRequest, obj: Tenant, form: ModelForm[Tenant], change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            # The row as stored: the form has already copied its values onto `obj`, and the
            # service saves only what differs. This admin is the public host's: operators.
            services.tenant_update(
                tenant=Tenant.objects.get(pk=obj.pk),
                name=data["name"],
                is_active=data["is_active"],
                tenant_settings=data.get("settings") or {},
                may_loosen_limits=True,
            )
            return
        result = services.tenant_create(
            name=data["name"],
            slug=data["slug"],
            admin_email=data["admin_email"],
            admin_password=data.get("admin_password") or None,
            tenant_settings=data.get("settings") or {},
        )
        # Let the admin's own bookkeeping (log entry, redirect) see the created row.
        obj.pk = result.tenant.pk
        obj.schema_name = result.tenant.schema_name
        obj._state.adding = False
        obj._state.db = result.tenant._state.db
        if result.generated_password:
            messages.warning(
                request,
                f"Tenant created at http://{result.domain.domain}/ . Its admin {result.admin.email} "
                f"has the password {result.generated_password} (shown this once).",
            )

    @admin.action(description="Deactivate selected tenants (their hosts answer 404)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            services.tenant_update(tenant=tenant, is_active=False)

    @admin.action(description="Activate selected tenants")
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            services.tenant_update(tenant=tenant, is_active=True)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin[Domain]):
    list_display = ["domain", "tenant", "is_primary", "created_at"]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name", "tenant__slug"]
