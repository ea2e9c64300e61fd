"""Reads of the organization tree, narrowed to what the actor may see.

Seeing a node takes organizations.view or organizations.manage at it (a grant
at a node covers its subtree; an unscoped grant covers the tree). A node the
actor cannot see is a 404, never a 403, so ids cannot be probed; a node they
see but may not act on is a 403.

Every read is a fixed number of queries whatever the depth: a subtree is one
prefix scan of `path`, the ancestors are the ids in it (see models.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.db.models.functions import Collate

from apps.core.errors import ForbiddenError, NotFoundError, ValidationError
from apps.organizations.models import Membership, Organization
from apps.rbac.grants import Grants, user_grants

if TYPE_CHECKING:
    from apps.accounts.models import User

VIEW = "organizations.view"
MANAGE = "organizations.manage"

NOT_FOUND = "Organization not found"
UNKNOWN_PARENT = "No such organization."

# Tree order: by path, compared byte by byte. Under a linguistic collation (en_US)
# punctuation is ignored at first, so "/12/" would sort between "/1/2/" and "/1/3/"
# and a subtree would no longer be contiguous.
TREE_ORDER = Collate("path", "C")


def visible_scope(grants: Grants) -> tuple[str, ...] | None:
    """Where the actor sees nodes: None for the whole tree, else the subtree paths
    (empty: nowhere). Managing a subtree implies seeing it."""
    view, manage = grants.scope(VIEW), grants.scope(MANAGE)
    if view is None or manage is None:
        return None
    return tuple(sorted(set(view) | set(manage)))


def within(
    queryset: QuerySet[Organization], scope: tuple[str, ...] | None
) -> QuerySet[Organization]:
    """`queryset` narrowed to the subtrees of `scope` (None: unchanged; empty: nothing)."""
    if scope is None:
        return queryset
    if not scope:
        return queryset.none()
    inside = Q()
    for path in scope:
        inside |= Q(path__startswith=path)
    return queryset.filter(inside)


def _sees(grants: Grants, organization: Organization) -> bool:
    return grants.allows(VIEW, organization) or grants.allows(MANAGE, organization)


def organization_list(
    *,
    actor: User,
    parent_id: int | None = None,
    roots: bool = False,
    search: str | None = None,
    type: str | None = None,
) -> QuerySet[Organization]:
    """The nodes `actor` sees, in tree order (by path): all of them, the children of
    `parent_id`, or with `roots` the top-level ones; `search` matches names (case
    insensitive), `type` exactly."""
    qs = within(Organization.objects.all(), visible_scope(user_grants(actor)))
    if roots:
        qs = qs.filter(parent__isnull=True)
    elif parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    if search:
        qs = qs.filter(name__icontains=search)
    if type:
        qs = qs.filter(type=type)
    return qs.order_by(TREE_ORDER)


def organization_get(*, actor: User, organization_id: int, permission: str = VIEW) -> Organization:
    """A node `actor` may act on with `permission` (404 unseen, 403 seen but not allowed)."""
    organization = Organization.objects.filter(pk=organization_id).first()
    grants = user_grants(actor)
    if organization is None or not _sees(grants, organization):
        raise NotFoundError(NOT_FOUND)
    if not grants.allows(permission, organization):
        raise ForbiddenError(f"You need the permission {permission} for this organization.")
    return organization


def parent_get(
    *, actor: User | None, parent_id: int, field: str = "parent_id", for_update: bool = False
) -> Organization:
    """A node named in a request body as a new parent: one the actor cannot see is an
    unknown id (422 on `field`, like one that does not exist), one they see but do not
    manage a 403. `actor` None: no permission check (the admin, a command)."""
    qs = Organization.objects.select_for_update() if for_update else Organization.objects.all()
    parent = qs.filter(pk=parent_id).first()
    if parent is None:
        raise ValidationError.for_field(field, UNKNOWN_PARENT)
    if actor is not None:
        grants = user_grants(actor)
        if not _sees(grants, parent):
            raise ValidationError.for_field(field, UNKNOWN_PARENT)
        if not grants.allows(MANAGE, parent):
            raise ForbiddenError(f"You need the permission {MANAGE} for the new parent.")
    return parent


def organization_descendants(
    *, organization: Organization, max_depth: int | None = None
) -> QuerySet[Organization]:
    """The nodes below `organization` (not itself), in tree order; `max_depth` levels
    down at most (1: the children).

    Not narrowed to the actor's scope: whoever sees a node sees its whole subtree (a
    grant covers descendants), so the caller checks the node and that is enough."""
    qs = Organization.objects.filter(path__startswith=organization.path).exclude(pk=organization.pk)
    if max_depth is not None:
        qs = qs.filter(depth__lte=organization.depth + max_depth)
    return qs.order_by(TREE_ORDER)


def organization_ancestors(*, actor: User, organization: Organization) -> list[Organization]:
    """The ancestors of `organization` the actor sees, root first: one query at any depth
    (the ids and their paths are read off the node's own path)."""
    scope = visible_scope(user_grants(actor))
    ids = organization.ancestor_ids()
    if scope is not None:
        # The path of the ancestor at index i is its ids up to i: keep those in scope.
        ids = [
            ancestor_id
            for i, ancestor_id in enumerate(ids)
            if any(("/" + "/".join(map(str, ids[: i + 1])) + "/").startswith(p) for p in scope)
        ]
    if not ids:
        return []
    return list(Organization.objects.filter(pk__in=ids).order_by("depth"))


def member_list(*, organization: Organization) -> QuerySet[Membership]:
    """Members of `organization` (not of its descendants) with their users, oldest first;
    soft-deleted users are left out (their membership comes back if they are restored)."""
    return (
        Membership.objects.filter(organization=organization, user__is_deleted=False)
        .select_related("user")
        .order_by("id")
    )


def membership_get(*, organization: Organization, user_id: int) -> Membership:
    membership = member_list(organization=organization).filter(user_id=user_id).first()
    if membership is None:
        raise NotFoundError("Membership not found")
    return membership
