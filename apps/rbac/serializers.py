from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer
from apps.rbac.catalogue import ALL_CODENAMES, OWNER
from apps.rbac.models import Role, RoleAssignment


class PermissionOutput(serializers.Serializer[Any]):
    codename = serializers.CharField()
    description = serializers.CharField()
    scopable = serializers.BooleanField(
        help_text="Whether a grant scoped to an organization subtree applies it there."
    )


class RoleOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    permissions = serializers.SerializerMethodField()
    is_system = serializers.BooleanField()
    system_key = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_permissions(self, role: Role) -> list[str]:
        return sorted(ALL_CODENAMES) if role.system_key == OWNER else sorted(role.permissions)


class RoleCreateInput(InputSerializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    permissions = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)


class RoleUpdateInput(InputSerializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    permissions = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False
    )


class OrganizationRef(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    path = serializers.CharField()


class AssignmentOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    role = serializers.SerializerMethodField()
    organization = serializers.SerializerMethodField()
    granted_by_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_role(self, assignment: RoleAssignment) -> dict[str, Any]:
        return {"id": assignment.role_id, "name": assignment.role.name}

    def get_organization(self, assignment: RoleAssignment) -> dict[str, Any] | None:
        org = assignment.organization
        return None if org is None else {"id": org.pk, "name": org.name, "path": org.path}


class AssignmentInput(InputSerializer):
    role_id = serializers.IntegerField()
    organization_id = serializers.IntegerField(required=False, allow_null=True, default=None)


class EffectivePermissionOutput(serializers.Serializer[Any]):
    codename = serializers.CharField()
    everywhere = serializers.BooleanField()
    organizations = OrganizationRef(many=True, help_text="The subtrees where it holds.")


class MyPermissionsOutput(serializers.Serializer[Any]):
    permissions = EffectivePermissionOutput(many=True)
    roles = AssignmentOutput(many=True)
