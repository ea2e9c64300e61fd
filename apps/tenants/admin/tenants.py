"""The tenants' list and page in the admin: every write through the services, a refusal
shown as a message on the page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.admin_site import ServiceAdminMixin, refusal_text
from apps.core.context import current_request
from apps.core.errors import PlatformError
from apps.tenants import services
from apps.tenants.admin.domains import DomainInline
from apps.tenants.admin.forms import (
    DomainFormSet,
    TenantChangeForm,
    TenantCreationForm,
    settings_from,
)
from apps.tenants.domains import tenant_domains_set
from apps.tenants.lifecycle import require_deletion_confirmed, tenant_delete, tenant_restore
from apps.tenants.links import tenant_url
from apps.tenants.models import Tenant


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
                tenant_settings=settings_from(data),
                may_loosen_limits=True,
            )
            return
        result = services.tenant_create(
            name=data["name"],
            slug=data["slug"],
            admin_email=data["admin_email"],
            admin_password=data.get("admin_password") or None,
            tenant_settings=settings_from(data),
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
