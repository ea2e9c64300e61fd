from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.core.errors import NotFoundError
from apps.organizations.models import Membership, Organization
from apps.rbac.grants import Grants
from apps.rbac.models import Role, RoleAssignment

if TYPE_CHECKING:
    from apps.accounts.models import User


def role_list() -> QuerySet[Role]:
    return Role.objects.order_by("id")


def role_get(*, role_id: int) -> Role:
    role = Role.objects.filter(pk=role_id).first()
    if role is None:
        raise NotFoundError("Role not found")
    return role


def assignment_list(*, user: User) -> QuerySet[RoleAssignment]:
    return (
        RoleAssignment.objects.filter(user=user)
        .select_related("role", "organization")
        .order_by("id")
    )


def assignment_get(*, user: User, assignment_id: int) -> RoleAssignment:
    assignment = assignment_list(user=user).filter(pk=assignment_id).first()
    if assignment is None:
        raise NotFoundError("Role assignment not found")
    return assignment


def effective_permissions(grants: Grants) -> list[dict[str, Any]]:
    """The grants as the API shows them: each codename, everywhere or in which subtrees."""
    paths = {p for scope in grants.by_permission.values() if scope for p in scope}
    ids = [int(p.strip("/").rsplit("/", 1)[-1]) for p in paths]
    by_path = {
        org.path: org for org in Organization.objects.filter(pk__in=ids).only("id", "name", "path")
    }
    out = []
    for codename, scope in sorted(grants.by_permission.items()):
        organizations = [
            {"id": by_path[p].pk, "name": by_path[p].name, "path": p}
            for p in (scope or ())
            if p in by_path
        ]
        out.append(
            {"codename": codename, "everywhere": scope is None, "organizations": organizations}
        )
    return out


def users_within(queryset: QuerySet[User], scope: tuple[str, ...] | None) -> QuerySet[User]:
    """`queryset` narrowed to members of an organization inside one of the subtrees
    (None: everywhere, unchanged; an empty scope: nobody)."""
    if scope is None:
        return queryset
    if not scope:
        return queryset.none()

    inside = Q()
    for path in scope:
        inside |= Q(organization__path__startswith=path)
    return queryset.filter(Exists(Membership.objects.filter(inside, user_id=OuterRef("pk"))))
