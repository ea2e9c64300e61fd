"""A tenant's domains in the admin: edited as one list on the tenant's page, and listed on
their own to find one."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.tenants.admin.forms import DomainForm, DomainFormSet
from apps.tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    form = DomainForm
    formset = DomainFormSet
    extra = 1
    fields = ["domain", "is_primary", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name_plural = "Domains (exactly one primary: where links mailed to its users point)"


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
