"""/api/v1/permissions, /api/v1/roles, /api/v1/users/{id}/roles, /api/v1/users/me/permissions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.accounts.requests import request_user
from apps.core.errors import NotFoundError, ValidationError
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.mfa.step_up import step_up_require, step_up_response
from apps.organizations.models import Organization
from apps.rbac import selectors, services
from apps.rbac.catalogue import CATALOGUE
from apps.rbac.drf import AUTHENTICATED, HasPermission
from apps.rbac.grants import request_grants
from apps.rbac.models import Role
from apps.rbac.serializers import (
    AssignmentInput,
    AssignmentOutput,
    MyPermissionsOutput,
    PermissionOutput,
    RoleCreateInput,
    RoleOutput,
    RoleUpdateInput,
)

_roles = ["roles"]


def _target_user(user_id: int) -> User:
    user = User.objects.live().filter(pk=user_id).first()
    if user is None:
        raise NotFoundError("User not found")
    return user


class PermissionsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED}

    @extend_schema(
        operation_id="permissions_list",
        responses={200: PermissionOutput(many=True)},
        description="The permission catalogue: every codename a role can hold.",
        tags=_roles,
    )
    def get(self, request: Request) -> Response:
        return Response(PermissionOutput(CATALOGUE, many=True).data)


class RolesApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "roles.view", "POST": "roles.manage"}

    @extend_schema(operation_id="roles_list", responses={200: paginated(RoleOutput)}, tags=_roles)
    def get(self, request: Request) -> Response:
        paginator = PagePagination()
        page = paginator.paginate_queryset(selectors.role_list(), request, view=self)
        return paginator.get_paginated_response(RoleOutput(page, many=True).data)

    @extend_schema(
        operation_id="roles_create",
        request=RoleCreateInput,
        responses={201: RoleOutput, 409: OpenApiResponse(description="Name taken")},
        description="Only permissions the caller holds everywhere can be put in a role.",
        tags=_roles,
    )
    def post(self, request: Request) -> Response:
        data = validated(RoleCreateInput, request.data)
        role = services.role_create(actor=request_user(request), **data)
        return Response(RoleOutput(role).data, status=status.HTTP_201_CREATED)


class RoleDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "roles.view", "PATCH": "roles.manage", "DELETE": "roles.manage"}

    @extend_schema(operation_id="roles_retrieve", responses={200: RoleOutput}, tags=_roles)
    def get(self, request: Request, role_id: int) -> Response:
        return Response(RoleOutput(selectors.role_get(role_id=role_id)).data)

    @extend_schema(
        operation_id="roles_update",
        request=RoleUpdateInput,
        responses={
            200: RoleOutput,
            403: step_up_response(),
            409: OpenApiResponse(description="Name taken"),
        },
        description="The caller must hold every permission the role has and will have.",
        tags=_roles,
    )
    def patch(self, request: Request, role_id: int) -> Response:
        step_up_require(request)
        data = validated(RoleUpdateInput, request.data)
        role = selectors.role_get(role_id=role_id)
        return Response(
            RoleOutput(services.role_update(actor=request_user(request), role=role, **data)).data
        )

    @extend_schema(
        operation_id="roles_delete",
        responses={204: None, 409: OpenApiResponse(description="A system role")},
        tags=_roles,
    )
    def delete(self, request: Request, role_id: int) -> Response:
        services.role_delete(actor=request_user(request), role=selectors.role_get(role_id=role_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserRolesApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "roles.view", "POST": "roles.manage"}

    @extend_schema(
        operation_id="users_roles_list", responses={200: AssignmentOutput(many=True)}, tags=_roles
    )
    def get(self, request: Request, user_id: int) -> Response:
        assignments = selectors.assignment_list(user=_target_user(user_id))
        return Response(AssignmentOutput(assignments, many=True).data)

    @extend_schema(
        operation_id="users_roles_assign",
        request=AssignmentInput,
        responses={
            201: AssignmentOutput,
            403: step_up_response(),
            409: OpenApiResponse(description="Already assigned"),
        },
        description=(
            "Grant a role, everywhere or in an organization's subtree. Refused on yourself, "
            "and unless you hold roles.manage and every permission of the role there."
        ),
        tags=_roles,
    )
    def post(self, request: Request, user_id: int) -> Response:
        step_up_require(request)
        data = validated(AssignmentInput, request.data)
        user = _target_user(user_id)
        role = Role.objects.filter(pk=data["role_id"]).first()
        if role is None:
            raise ValidationError.for_field("role_id", "No such role.")
        organization = None
        if data["organization_id"] is not None:
            organization = Organization.objects.filter(pk=data["organization_id"]).first()
            if organization is None:
                raise ValidationError.for_field("organization_id", "No such organization.")
        assignment = services.role_assign(
            actor=request_user(request), user=user, role=role, organization=organization
        )
        return Response(AssignmentOutput(assignment).data, status=status.HTTP_201_CREATED)


class UserRoleDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"DELETE": "roles.manage"}

    @extend_schema(
        operation_id="users_roles_revoke",
        responses={204: None, 409: OpenApiResponse(description="The last owner")},
        tags=_roles,
    )
    def delete(self, request: Request, user_id: int, assignment_id: int) -> Response:
        assignment = selectors.assignment_get(
            user=_target_user(user_id), assignment_id=assignment_id
        )
        services.role_unassign(actor=request_user(request), assignment=assignment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyPermissionsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED}

    @extend_schema(
        operation_id="users_me_permissions",
        responses={200: MyPermissionsOutput},
        description=(
            "What the caller may do: each permission held, everywhere or in which organization "
            "subtrees, and the role assignments it comes from."
        ),
        tags=_roles,
    )
    def get(self, request: Request) -> Response:
        data: dict[str, Any] = {
            "permissions": selectors.effective_permissions(request_grants(request)),
            "roles": AssignmentOutput(
                selectors.assignment_list(user=request_user(request)), many=True
            ).data,
        }
        return Response(data)
