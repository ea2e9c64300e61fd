"""Roles with their permissions, and who holds them where, in the tenant's admin.

The admin is for the tenant's superusers, so it does not apply the API's
escalation rules; it does keep the system roles (undeletable, the owner's
permissions fixed), the last owner, the audit log and the grants cache right.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.audit.services import audit_record, snapshot
from apps.rbac.catalogue import ALL_CODENAMES, CATALOGUE, OWNER
from apps.rbac.models import Role, RoleAssignment
from apps.rbac.services import LAST_OWNER, assignment_audit


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

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin[Role]):
    form = RoleForm
    list_display = ["name", "system_key", "permission_list", "holders", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["system_key", "created_at", "updated_at"]
    inlines = [AssignmentInline]

    @admin.display(description="permissions")
    def permission_list(self, role: Role) -> str:
        return "all" if role.system_key == OWNER else ", ".join(sorted(role.permissions)) or "-"

    @admin.display(description="holders")
    def holders(self, role: Role) -> int:
        return role.assignments.count()

    def has_delete_permission(self, request: HttpRequest, obj: Role | None = None) -> bool:
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, so system roles stay
        return actions

    def save_model(self, request: HttpRequest, obj: Role, form: Any, change: bool) -> None:
        before = (
            snapshot(Role.objects.get(pk=obj.pk), ["name", "description", "permissions"])
            if change
            else {}
        )
        super().save_model(request, obj, form, change)
        after = snapshot(obj, ["name", "description", "permissions"])
        if change:
            changes = {k: [before[k], v] for k, v in after.items() if before[k] != v}
            if changes:
                audit_record(action="role.updated", target=obj, changes=changes)
        else:
            audit_record(action="role.created", target=obj, changes=after)

    def delete_model(self, request: HttpRequest, obj: Role) -> None:
        audit_record(
            action="role.deleted", target=obj, changes=snapshot(obj, ["name", "permissions"])
        )
        super().delete_model(request, obj)


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
class RoleAssignmentAdmin(admin.ModelAdmin[RoleAssignment]):
    form = RoleAssignmentForm
    list_display = ["user", "role", "organization", "granted_by", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "role__name", "organization__name"]
    raw_id_fields = ["user", "organization"]
    readonly_fields = ["granted_by", "created_at"]
    fields = ["user", "role", "organization", "granted_by", "created_at"]

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
        obj.granted_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        assignment_audit("role.assigned", obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        obj = self.get_object(request, object_id)
        if obj is not None and request.method == "POST" and _is_last_owner(obj):
            self.message_user(request, LAST_OWNER, messages.ERROR)
            from django.shortcuts import redirect

            return redirect("admin:rbac_roleassignment_changelist")
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: RoleAssignment) -> None:
        assignment_audit("role.unassigned", obj)
        super().delete_model(request, obj)


def _is_last_owner(assignment: RoleAssignment) -> bool:
    if assignment.role.system_key != OWNER or assignment.organization_id is not None:
        return False
    others = RoleAssignment.objects.filter(
        role__system_key=OWNER,
        organization__isnull=True,
        user__is_active=True,
        user__is_deleted=False,
    ).exclude(pk=assignment.pk)
    return not others.exists()
