"""/api/v1/organizations: the tenant's organization tree and its members.

organizations.view lets a user see the subtrees it is granted at (an unscoped
grant: the whole tree), organizations.manage change them; nodes outside are
404s (see selectors.py).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.requests import request_user
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.organizations import selectors, services
from apps.organizations.selectors import MANAGE, VIEW
from apps.organizations.serializers import (
    DeleteInput,
    DescendantsFilterInput,
    MemberAddInput,
    MembershipOutput,
    MemberUpdateInput,
    OrganizationCreateInput,
    OrganizationFilterInput,
    OrganizationMoveInput,
    OrganizationOutput,
    OrganizationUpdateInput,
)
from apps.rbac.drf import HasPermission

_tag = ["organizations"]
_unseen = OpenApiResponse(description="No such organization, or one outside your scope")


def _page(view: APIView, request: Request, queryset: object, serializer: type) -> Response:
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)  # type: ignore[arg-type]
    return paginator.get_paginated_response(serializer(page, many=True).data)


class OrganizationsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": VIEW, "POST": MANAGE}

    @extend_schema(
        operation_id="organizations_list",
        parameters=[OrganizationFilterInput],
        responses={200: paginated(OrganizationOutput)},
        description="The organizations you can see, in tree order (by path).",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        filters = validated(OrganizationFilterInput, request.query_params.dict())
        parent: str | None = filters.get("parent")
        queryset = selectors.organization_list(
            actor=request_user(request),
            parent_id=int(parent) if parent is not None and parent != "null" else None,
            roots=parent == "null",
            search=filters.get("search"),
            type=filters.get("type"),
        )
        return _page(self, request, queryset, OrganizationOutput)

    @extend_schema(
        operation_id="organizations_create",
        request=OrganizationCreateInput,
        responses={201: OrganizationOutput, 409: OpenApiResponse(description="Sibling name taken")},
        description="Needs organizations.manage on the parent (unscoped for a root).",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(OrganizationCreateInput, request.data)
        organization = services.organization_create(
            actor=request_user(request),
            name=data["name"],
            type=data["type"],
            parent_id=data["parent_id"],
        )
        return Response(OrganizationOutput(organization).data, status=status.HTTP_201_CREATED)


class OrganizationDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": VIEW, "PATCH": MANAGE, "DELETE": MANAGE}

    @extend_schema(
        operation_id="organizations_retrieve",
        responses={200: OrganizationOutput, 404: _unseen},
        tags=_tag,
    )
    def get(self, request: Request, organization_id: int) -> Response:
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id
        )
        return Response(OrganizationOutput(organization).data)

    @extend_schema(
        operation_id="organizations_update",
        request=OrganizationUpdateInput,
        responses={
            200: OrganizationOutput,
            404: _unseen,
            409: OpenApiResponse(description="Sibling name taken"),
        },
        description="Name and type only; POST .../move changes the parent.",
        tags=_tag,
    )
    def patch(self, request: Request, organization_id: int) -> Response:
        data = validated(OrganizationUpdateInput, request.data)
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id, permission=MANAGE
        )
        organization = services.organization_update(organization=organization, **data)
        return Response(OrganizationOutput(organization).data)

    @extend_schema(
        operation_id="organizations_delete",
        parameters=[DeleteInput],
        responses={
            204: None,
            404: _unseen,
            409: OpenApiResponse(description="It has children or members (use cascade=true)"),
        },
        tags=_tag,
    )
    def delete(self, request: Request, organization_id: int) -> Response:
        options = validated(DeleteInput, request.query_params.dict())
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id, permission=MANAGE
        )
        services.organization_delete(organization=organization, cascade=options["cascade"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationMoveApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": MANAGE}

    @extend_schema(
        operation_id="organizations_move",
        request=OrganizationMoveInput,
        responses={
            200: OrganizationOutput,
            404: _unseen,
            409: OpenApiResponse(description="A sibling there has the same name"),
        },
        description=(
            "Moves the organization with its subtree. Needs organizations.manage on the "
            "organization and on the new parent (unscoped to make it a root)."
        ),
        tags=_tag,
    )
    def post(self, request: Request, organization_id: int) -> Response:
        actor = request_user(request)
        data = validated(OrganizationMoveInput, request.data)
        organization = selectors.organization_get(
            actor=actor, organization_id=organization_id, permission=MANAGE
        )
        organization = services.organization_move(
            actor=actor, organization=organization, parent_id=data["parent_id"]
        )
        return Response(OrganizationOutput(organization).data)


class OrganizationDescendantsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": VIEW}

    @extend_schema(
        operation_id="organizations_descendants",
        parameters=[DescendantsFilterInput],
        responses={200: paginated(OrganizationOutput), 404: _unseen},
        description="Every node below this one (not itself), in tree order.",
        tags=_tag,
    )
    def get(self, request: Request, organization_id: int) -> Response:
        filters = validated(DescendantsFilterInput, request.query_params.dict())
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id
        )
        queryset = selectors.organization_descendants(
            organization=organization, max_depth=filters.get("max_depth")
        )
        return _page(self, request, queryset, OrganizationOutput)


class OrganizationAncestorsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": VIEW}

    @extend_schema(
        operation_id="organizations_ancestors",
        responses={200: OrganizationOutput(many=True), 404: _unseen},
        description="The ancestors you can see, root first (not paginated).",
        tags=_tag,
    )
    def get(self, request: Request, organization_id: int) -> Response:
        actor = request_user(request)
        organization = selectors.organization_get(actor=actor, organization_id=organization_id)
        ancestors = selectors.organization_ancestors(actor=actor, organization=organization)
        return Response(OrganizationOutput(ancestors, many=True).data)  # type: ignore[arg-type]


class MembersApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": VIEW, "POST": MANAGE}

    @extend_schema(
        operation_id="organizations_members_list",
        responses={200: paginated(MembershipOutput), 404: _unseen},
        description="The organization's own members (not its descendants'), with their titles.",
        tags=_tag,
    )
    def get(self, request: Request, organization_id: int) -> Response:
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id
        )
        return _page(
            self, request, selectors.member_list(organization=organization), MembershipOutput
        )

    @extend_schema(
        operation_id="organizations_members_add",
        request=MemberAddInput,
        responses={
            201: MembershipOutput,
            404: _unseen,
            409: OpenApiResponse(description="Already a member"),
        },
        description="Needs organizations.manage here, and to manage the user already "
        "(users.manage reaching them and every permission they hold), since a member falls "
        "under the subtree's user managers.",
        tags=_tag,
    )
    def post(self, request: Request, organization_id: int) -> Response:
        data = validated(MemberAddInput, request.data)
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id, permission=MANAGE
        )
        membership = services.member_add(
            actor=request_user(request),
            organization=organization,
            user_id=data["user_id"],
            title=data["title"],
        )
        return Response(MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"PATCH": MANAGE, "DELETE": MANAGE}

    @extend_schema(
        operation_id="organizations_members_update",
        request=MemberUpdateInput,
        responses={200: MembershipOutput, 404: _unseen},
        tags=_tag,
    )
    def patch(self, request: Request, organization_id: int, user_id: int) -> Response:
        data = validated(MemberUpdateInput, request.data)
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id, permission=MANAGE
        )
        membership = selectors.membership_get(organization=organization, user_id=user_id)
        membership = services.member_update(membership=membership, title=data["title"])
        return Response(MembershipOutput(membership).data)

    @extend_schema(
        operation_id="organizations_members_remove",
        responses={204: None, 404: _unseen},
        tags=_tag,
    )
    def delete(self, request: Request, organization_id: int, user_id: int) -> Response:
        organization = selectors.organization_get(
            actor=request_user(request), organization_id=organization_id, permission=MANAGE
        )
        membership = selectors.membership_get(organization=organization, user_id=user_id)
        services.member_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)
