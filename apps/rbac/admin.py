"""Roles with their permissions, and who holds them where, in the tenant's admin.

Staff reach these pages with roles.view / roles.manage (apps.rbac.backends), so
every write goes through the same services as the API, with its escalation rules
(nobody grants, widens or takes away permissions they lack), the system roles,
the last owner, the audit log and the grants cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from apps.accounts.requests import request_user
from apps.core.admin_site import ServiceAdminMixin
from apps.rbac.catalogue import ALL_CODENAMES, CATALOGUE, OWNER
from apps.rbac.models import Role, RoleAssignment
from apps.rbac.services import role_assign, role_create, role_delete, role_unassign, role_update

if TYPE_CHECKING:
    pass


class RoleForm(forms.ModelForm[Role]):
    permissions = forms.MultipleChoiceField(
        choices=[(p.codename, f"{p.codename}: {p.description}") for p in CATALOGUE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Role
        fields = ["name", "description", "permissions"]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if self.instance.pk and self.instance.is_system and name != self.instance.name:
            raise forms.ValidationError("System roles keep their names.")
        return name

    def clean_permissions(self) -> list[str]:
        chosen = sorted(set(self.cleaned_data["permissions"]))
        if self.instance.system_key == OWNER and set(chosen) != ALL_CODENAMES:
            raise forms.ValidationError("The owner role always holds every permission.")
        return chosen


class AssignmentInline(admin.TabularInline[RoleAssignment, Role]):
    model = RoleAssignment
    fk_name = "role"
    extra = 0
    fields = ["user", "organization", "granted_by", "created_at"]
    readonly_fields = ["user", "organization", "granted_by", "created_at"]
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoleAssignment]:
        return super().get_queryset(request).select_related("user", "role", "organization")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Role)
class RoleAdmin(ServiceAdminMixin, admin.ModelAdmin[Role]):
    form = RoleForm
    list_display = ["name", "system_key", "permission_list", "holders", "updated_at"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    readonly_fields = ["system_key", "created_at", "updated_at"]
    inlines = [AssignmentInline]

    @admin.display(description="permissions")
    def permission_list(self, role: Role) -> str:
        return "all" if role.system_key == OWNER else ", ".join(sorted(role.permissions)) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Role]:
        return super().get_queryset(request).annotate(holder_count=Count("assignments"))

    @admin.display(description="holders", ordering="holder_count")
    def holders(self, role: Role) -> int:
        return int(getattr(role, "holder_count", 0))

    def has_delete_permission(self, request: HttpRequest, obj: Role | None = None) -> bool:
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, so system roles stay
        return actions

    def save_model(self, request: HttpRequest, obj: Role, form: Any, change: bool) -> None:
        actor = request_user(request)
        name, description, permissions = obj.name, obj.description, list(obj.permissions)
        if change:
            role_update(
                actor=actor, role=obj, name=name, description=description, permissions=permissions
            )
            return
        created = role_create(
            actor=actor, name=name, description=description, permissions=permissions
        )
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Role) -> None:
        role_delete(actor=request_user(request), role=obj)


class RoleAssignmentForm(forms.ModelForm[RoleAssignment]):
    class Meta:
        model = RoleAssignment
        fields = ["user", "role", "organization"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        role, organization = data.get("role"), data.get("organization")
        if role is not None and role.system_key == OWNER and organization is not None:
            raise forms.ValidationError("The owner role cannot be scoped to an organization.")
        return data


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(ServiceAdminMixin, admin.ModelAdmin[RoleAssignment]):
    form = RoleAssignmentForm
    list_display = ["user", "role", "organization", "granted_by", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "role__name", "organization__name"]
    # Searched by name (the user, role and organization admins' search fields); the search
    # needs the view permission of the searched model's page (users.view, roles.view,
    # organizations.view), as Django's autocomplete asks that admin.
    autocomplete_fields = ["user", "role", "organization"]
    readonly_fields = ["granted_by", "created_at"]
    fields = ["user", "role", "organization", "granted_by", "created_at"]

    list_select_related = ["user", "role", "organization", "granted_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoleAssignment]:
        return (
            super()
            .get_queryset(request)
            .select_related("user", "role", "organization", "granted_by")
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke and grant again: every grant is one audited event

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(
        self, request: HttpRequest, obj: RoleAssignment, form: Any, change: bool
    ) -> None:
        created = role_assign(
            actor=request_user(request),
            user=obj.user,
            role=obj.role,
            organization=obj.organization,
        )
        obj.pk, obj.granted_by, obj.created_at = created.pk, created.granted_by, created.created_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: RoleAssignment) -> None:
        role_unassign(actor=request_user(request), assignment=obj)
