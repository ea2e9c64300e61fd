"""/api/v1/users: the tenant's users. users.view and users.manage decide who sees and
manages whom (scoped grants: the members of a subtree); everyone sees and edits their own
profile at /users/me."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors
from apps.accounts.models import User
from apps.accounts.requests import request_user
from apps.accounts.serializers import (
    ProfileUpdateInput,
    UserCreateInput,
    UserFilterInput,
    UserOutput,
    UserUpdateInput,
)
from apps.accounts.services import users as user_services
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.rbac.drf import AUTHENTICATED, HasPermission
from apps.rbac.grants import request_grants, require
from apps.rbac.selectors import users_within

_tag = ["users"]


class UsersApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "users.view", "POST": "users.manage"}

    @extend_schema(
        operation_id="users_list",
        parameters=[UserFilterInput],
        responses={200: paginated(UserOutput)},
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        filters = validated(UserFilterInput, request.query_params.dict())
        if filters["deleted"]:
            require(request_user(request), "users.manage")  # deleted users belong to no subtree
        queryset = selectors.user_list(
            actor=request_user(request),
            search=filters.get("search"),
            is_active=filters.get("is_active"),
            ordering=filters.get("ordering"),
            deleted=filters["deleted"],
        )
        scope = request_grants(request).scope("users.view")
        queryset = users_within(queryset, scope)
        # Only what the output shows: never the password hash, nor the search vector.
        queryset = queryset.only(*UserOutput.sources())
        searching = bool(filters.get("search"))
        # Everyone in sight and no search: the total is the tenant's kept count. A search
        # visits every match (to rank them, or to filter before another order): its total
        # comes with the page, in one statement. Else (a scoped grant) a COUNT.
        total = None
        if scope is None and not searching:
            total = selectors.user_list_total(
                deleted=filters["deleted"], is_active=filters.get("is_active")
            )
        paginator = PagePagination()
        page = paginator.paginate_queryset(
            queryset, request, view=self, total_with_rows=searching, total=total
        )
        return paginator.get_paginated_response(UserOutput(page, many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        operation_id="users_create",
        request=UserCreateInput,
        responses={201: UserOutput, 409: OpenApiResponse(description="Email or username taken")},
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        require(request_user(request), "users.manage")  # a new user is in no subtree yet
        data = validated(UserCreateInput, request.data)
        user = user_services.user_create(
            email=data["email"],
            username=data["username"],
            password=data["password"],
            full_name=data["full_name"],
            is_staff=data["is_staff"],
        )
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class UserMeApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED, "PATCH": AUTHENTICATED}

    @extend_schema(operation_id="users_me", responses={200: UserOutput}, tags=_tag)
    def get(self, request: Request) -> Response:
        # The authenticated user is current: its cached state is dropped on every save.
        return Response(UserOutput(request_user(request)).data)

    @extend_schema(
        operation_id="users_me_update",
        request=ProfileUpdateInput,
        responses={200: UserOutput, 409: OpenApiResponse(description="Username taken")},
        tags=_tag,
    )
    def patch(self, request: Request) -> Response:
        data = validated(ProfileUpdateInput, request.data)
        user = User.objects.live().get(pk=request_user(request).pk)
        user_services.user_update(user=user, changes=data, by=user, managed=False)
        return Response(UserOutput(user).data)


class UserDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "users.view", "PATCH": "users.manage", "DELETE": "users.manage"}

    @extend_schema(operation_id="users_retrieve", responses={200: UserOutput}, tags=_tag)
    def get(self, request: Request, user_id: int) -> Response:
        return Response(
            UserOutput(selectors.user_get(actor=request_user(request), user_id=user_id)).data
        )

    @extend_schema(
        operation_id="users_update",
        request=UserUpdateInput,
        responses={200: UserOutput, 409: OpenApiResponse(description="Email or username taken")},
        description="Needs users.manage for this user (everywhere, or a subtree they are in), "
        "and every permission the user holds, at least as widely (403 otherwise: owners are "
        "managed by owners). `is_staff` needs users.manage everywhere. A new `email` is only "
        "asked for: it shows as `pending_email` and takes effect once the new address "
        "confirms by the link mailed to it (the old address is told).",
        tags=_tag,
    )
    def patch(self, request: Request, user_id: int) -> Response:
        actor = request_user(request)
        data = validated(UserUpdateInput, request.data)
        user = selectors.user_get(actor=actor, user_id=user_id, permission="users.manage")
        user_services.user_update(user=user, changes=data, by=actor, managed=True)
        return Response(UserOutput(user).data)

    @extend_schema(
        operation_id="users_delete",
        responses={
            204: None,
            409: OpenApiResponse(description="The tenant's last owner"),
            422: OpenApiResponse(description="Your own account"),
        },
        tags=_tag,
    )
    def delete(self, request: Request, user_id: int) -> Response:
        actor = request_user(request)
        user = selectors.user_get(actor=actor, user_id=user_id, permission="users.manage")
        user_services.user_delete(user=user, by=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserRestoreApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": "users.manage"}

    @extend_schema(
        operation_id="users_restore",
        request=None,
        responses={
            200: UserOutput,
            409: OpenApiResponse(description="Email or username taken since"),
        },
        tags=_tag,
    )
    def post(self, request: Request, user_id: int) -> Response:
        actor = request_user(request)
        require(actor, "users.manage")  # deleted users belong to no subtree
        user = selectors.user_get(
            actor=actor, user_id=user_id, permission="users.manage", include_deleted=True
        )
        return Response(UserOutput(user_services.user_restore(user=user, by=actor)).data)
