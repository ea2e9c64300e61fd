"""Tenants and their domains in the public admin (platform operators).

Every write goes through the services (`apps.tenants.services`, `.lifecycle`, `.domains`): creating (schema
cloned from the template, first admin), changing, deactivating, deleting
(deactivated now, dropped after TENANT_RETENTION_DAYS, or now when confirmed),
restoring and editing the domains, so audit, events and cache invalidation
follow as they do for the API. A service's refusal is a form error or a message
on the page, never an error page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.password_validation import validate_password
from django.db.models import QuerySet
from django.forms import ModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.admin_site import ServiceAdminMixin, refusal_text
from apps.core.admin_widgets import KeyValueField
from apps.core.context import current_request
from apps.core.errors import PlatformError
from apps.tenants import services
from apps.tenants.domains import DomainSpec, domain_list_check, tenant_domains_set
from apps.tenants.lifecycle import require_deletion_confirmed, tenant_delete, tenant_restore
from apps.tenants.links import tenant_url
from apps.tenants.models import Domain, Tenant
from apps.tenants.validators import settings_errors, slug_errors

RATE_LIMIT_HELP = (
    "The tenant's API rate limit, e.g. 1200/m, 100/10s or 5000/hour. Empty: the platform's "
    f"({settings.API_RATE_LIMIT or 'none'})."
)


# Settings with a typed field of their own on the tenant's form (`settings_errors` checks
# them); any other key is kept and edited as `key = value` lines.
KNOWN_SETTINGS = frozenset({"rate_limit"})


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _primary_host(tenant: Tenant) -> str | None:
    domains = list(tenant.domains.all())  # prefetched by the list's queryset
    primary = next((d for d in domains if d.is_primary), domains[0] if domains else None)
    return primary.domain if primary else None


def _links(tenant: Tenant, request: HttpRequest | None) -> str:
    if tenant.is_deleted:
        return format_html("pending deletion until {}", _when(tenant.purge_after))
    if not tenant.is_active:
        return "inactive: its hosts answer 404"
    host = _primary_host(tenant)
    if host is None:
        return "no domain"
    return format_html(
        '<a href="{}" target="_blank" rel="noopener">open site</a> · '
        '<a href="{}" target="_blank" rel="noopener">open admin</a>',
        tenant_url(host, request=request),
        tenant_url(host, request=request, path="/admin/"),
    )


# ------------------------------------------------------------------ forms


class _RateLimitField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, max_length=64, help_text=RATE_LIMIT_HELP, **kwargs)


def _clean_rate_limit(value: str) -> str:
    value = value.strip()
    if value and (problems := settings_errors({"rate_limit": value})):
        raise forms.ValidationError([p.removeprefix("rate_limit: ") for p in problems])
    return value


def _other_settings_field() -> KeyValueField:
    return KeyValueField(
        reserved_keys=KNOWN_SETTINGS,
        label="Other settings",
        help_text="Settings without a field of their own.",
    )


def _settings_from(data: dict[str, Any]) -> dict[str, Any]:
    """The tenant's settings as the form has them: its typed fields, then the others."""
    others = dict(data.get("other_settings") or {})
    rate_limit = data.get("rate_limit")
    return {**others, "rate_limit": rate_limit} if rate_limit else others


class _SettingsFormMixin:
    """The settings as a whole checked as the service checks them, so a problem is the
    form's error rather than a refusal after submit."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}  # type: ignore[misc]
        if "other_settings" in cleaned and (problems := settings_errors(_settings_from(cleaned))):
            self.add_error("other_settings", problems)  # type: ignore[attr-defined]
        return cleaned


class TenantCreationForm(_SettingsFormMixin, forms.ModelForm[Tenant]):
    rate_limit = _RateLimitField()
    other_settings = _other_settings_field()
    admin_email = forms.EmailField(
        help_text="The tenant's first admin (staff and superuser there)."
    )
    admin_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to have one generated and shown once.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug"]
        help_texts = {
            "slug": "Its host becomes <slug>."
            + settings.PLATFORM_BASE_DOMAIN
            + " and its schema <slug>; it cannot change later.",
        }

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"]).strip().lower()
        if problems := slug_errors(slug):
            raise forms.ValidationError(problems)
        # The service's own check, so a taken slug (also by a tenant pending deletion, or
        # a schema left behind) is this field's error rather than a refusal after submit.
        if (conflict := services.slug_conflict(slug)) is not None:
            raise forms.ValidationError(conflict)
        return slug

    def clean_rate_limit(self) -> str:
        return _clean_rate_limit(str(self.cleaned_data.get("rate_limit") or ""))

    def clean_admin_password(self) -> str:
        password = str(self.cleaned_data.get("admin_password") or "")
        if password:
            validate_password(password)
        return password


class TenantChangeForm(_SettingsFormMixin, forms.ModelForm[Tenant]):
    rate_limit = _RateLimitField()
    other_settings = _other_settings_field()

    class Meta:
        model = Tenant
        fields = ["name", "is_active"]
        help_texts = {"is_active": "Unticked: the tenant's hosts answer 404; its data is kept."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = dict(self.instance.settings or {})
        if "rate_limit" in self.fields:
            self.fields["rate_limit"].initial = current.get("rate_limit")
        if "other_settings" in self.fields:
            self.fields["other_settings"].initial = {
                key: value for key, value in current.items() if key not in KNOWN_SETTINGS
            }

    def clean_rate_limit(self) -> str:
        return _clean_rate_limit(str(self.cleaned_data.get("rate_limit") or ""))


class DomainForm(forms.ModelForm[Domain]):
    class Meta:
        model = Domain
        fields = ["domain", "is_primary"]

    def clean_domain(self) -> str:
        return str(self.cleaned_data["domain"]).strip().lower().rstrip(".")


class DomainFormSet(BaseInlineFormSet[Domain, Tenant, ModelForm[Domain]]):
    """The tenant's domains as one list, checked and saved as one by `tenant_domains_set`."""

    def specs(self) -> list[DomainSpec]:
        return [
            DomainSpec(form.cleaned_data["domain"], bool(form.cleaned_data.get("is_primary")))
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("domain")
            and not (self.can_delete and form.cleaned_data.get("DELETE"))
        ]

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        _wanted, problems = domain_list_check(tenant=self.instance, domains=self.specs())
        if problems:
            raise forms.ValidationError(problems)


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    form = DomainForm
    formset = DomainFormSet
    extra = 1
    fields = ["domain", "is_primary", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name_plural = "Domains (exactly one primary: where links mailed to its users point)"


# ------------------------------------------------------------------ list filter


class DeletionFilter(admin.SimpleListFilter):
    title = "deletion"
    parameter_name = "deletion"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("pending", "Pending deletion")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> QuerySet[Tenant]:
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "pending":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


# ------------------------------------------------------------------ tenants


@admin.register(Tenant)
class TenantAdmin(ServiceAdminMixin, admin.ModelAdmin[Tenant]):
    list_filter = ["is_active", DeletionFilter]
    search_fields = ["name", "slug", "schema_name", "domains__domain"]
    inlines = [DomainInline]
    actions = ["deactivate", "activate", "restore"]
    delete_confirmation_template = "admin/tenants/tenant/delete_confirmation.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).customers().prefetch_related("domains")  # type: ignore[attr-defined]

    def get_list_display(self, request: HttpRequest) -> Any:
        def links(tenant: Tenant) -> str:
            return _links(tenant, request)

        links.short_description = "Reach"  # type: ignore[attr-defined]
        return ["name", "slug", "is_active", links, "created_at"]

    def get_form(
        self, request: HttpRequest, obj: Tenant | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = TenantCreationForm if obj is None else TenantChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:
            return ["name", "slug", "rate_limit", "other_settings", "admin_email", "admin_password"]
        fields = ["name", "slug", "schema_name", "reach", "status", "is_active"]
        return [*fields, "rate_limit", "other_settings", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:
            return []
        readonly = ["slug", "schema_name", "reach", "status"]
        return [*readonly, "created_at", "updated_at"]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        return {"slug": ("name",)} if obj is None else {}

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> Any:
        return [DomainInline] if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # A tenant pending deletion is shown, not changed: restore it first.
        if obj is not None and obj.is_deleted:
            return False
        return super().has_change_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        # Deleting is one tenant at a time, from its page, where what happens is shown.
        actions.pop("delete_selected", None)
        return actions

    # -------------------------------------------------- read-only fields

    @admin.display(description="Reach")
    def reach(self, tenant: Tenant) -> str:
        return _links(tenant, current_request())

    @admin.display(description="Status")
    def status(self, tenant: Tenant) -> str:
        if tenant.is_deleted:
            return (
                f"Deleted on {_when(tenant.deleted_at)}: its schema and data are dropped after "
                f"{_when(tenant.purge_after)} unless restored (action 'Restore' in the list)."
            )
        return "Active" if tenant.is_active else "Deactivated: its hosts answer 404."

    # -------------------------------------------------- writes, through the services

    def save_model(
        self, request: HttpRequest, obj: Tenant, form: ModelForm[Tenant], change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            # The row as stored: the form has already copied its values onto `obj`, and the
            # service saves only what differs. This admin is the public host's: operators.
            stored = Tenant.objects.get(pk=obj.pk)
            services.tenant_update(
                tenant=stored,
                name=data["name"],
                is_active=data["is_active"],
                tenant_settings=_settings_from(data),
                may_loosen_limits=True,
            )
            return
        result = services.tenant_create(
            name=data["name"],
            slug=data["slug"],
            admin_email=data["admin_email"],
            admin_password=data.get("admin_password") or None,
            tenant_settings=_settings_from(data),
        )
        # Let the admin's own bookkeeping (log entry, redirect) see the created row.
        obj.pk = result.tenant.pk
        obj.schema_name = result.tenant.schema_name
        obj._state.adding = False
        obj._state.db = result.tenant._state.db
        where = tenant_url(result.domain.domain, request=request)
        if result.generated_password:
            messages.warning(
                request,
                f"Tenant created at {where} . Its admin {result.admin.email} has the password "
                f"{result.generated_password} (shown this once).",
            )
        else:
            messages.info(request, f"Tenant created at {where} .")

    def save_formset(
        self, request: HttpRequest, form: ModelForm[Tenant], formset: Any, change: bool
    ) -> None:
        if not isinstance(formset, DomainFormSet):
            super().save_formset(request, form, formset, change)
            return
        tenant = Tenant.objects.get(pk=form.instance.pk)
        before = set(tenant.domains.values_list("domain", "is_primary"))
        tenant_domains_set(tenant=tenant, domains=formset.specs())
        after = set(tenant.domains.values_list("domain", "is_primary"))
        # What Django's change message and log entry read (formset.save() sets them).
        formset.new_objects = []
        formset.changed_objects = []
        formset.deleted_objects = []
        if before != after:
            messages.info(
                request,
                "Domains now: "
                + ", ".join(f"{d}{' (primary)' if p else ''}" for d, p in sorted(after)),
            )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Nothing goes now but the tenant's access: the page says what happens, and when.
        return [], {}, set(), []

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> Any:
        days = settings.TENANT_RETENTION_DAYS
        context = {
            "retention_days": days,
            "purge_after": _when(timezone.now() + timedelta(days=days)),
            **(extra_context or {}),
        }
        return super().delete_view(request, object_id, context)

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        now = request.POST.get("now") == "on"
        if now:
            require_deletion_confirmed(tenant=obj, confirm=request.POST.get("confirm"))
        tenant_delete(tenant=obj, now=now)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant_delete(tenant=tenant)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        pending = Tenant.objects.filter(pk=obj_id).first()
        if pending is None:
            self.message_user(request, f"{obj_display} and all its data were dropped.")
        else:
            self.message_user(
                request,
                f"{obj_display} is deleted: its hosts answer 404 now, and its schema and data "
                f"are dropped after {_when(pending.purge_after)} unless you restore it.",
            )
        return HttpResponseRedirect(reverse("admin:tenants_tenant_changelist"))

    # -------------------------------------------------- actions

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Tenant], change: Callable[[Tenant], Any]
    ) -> None:
        done = 0
        for tenant in queryset:
            try:
                change(tenant)
                done += 1
            except PlatformError as exc:
                self.message_user(request, f"{tenant}: {refusal_text(exc)}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} tenant(s) done.")

    @admin.action(description="Deactivate selected tenants (their hosts answer 404)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._each(request, queryset, lambda t: services.tenant_update(tenant=t, is_active=False))

    @admin.action(description="Activate selected tenants")
    def activate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._each(request, queryset, lambda t: services.tenant_update(tenant=t, is_active=True))

    @admin.action(description="Restore selected tenants pending deletion")
    def restore(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._each(request, queryset, lambda t: tenant_restore(tenant=t))


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin[Domain]):
    """Every domain, to find one; they are edited on their tenant's page (one list, checked
    as one: exactly one primary, the tenant's own host kept)."""

    list_display = ["domain", "tenant", "is_primary", "created_at"]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name", "tenant__slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Domain | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Domain | None = None) -> bool:
        return False
