"""Who a batch reaches: listed users, the holders of roles and the members of
organization subtrees; live, active users, each once, inside the sender's scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.accounts.models import User
from apps.organizations.models import Membership, Organization
from apps.rbac.models import RoleAssignment
from apps.rbac.selectors import users_within


def audience_queryset(audience: dict[str, Any]) -> QuerySet[User]:
    """The live, active users the audience names, each once, inside its "scope"
    (None: everywhere; else organization paths the sender's grant covers)."""
    matches: list[Q] = []
    if audience.get("users"):
        matches.append(Q(pk__in=audience["users"]))
    if audience.get("roles"):
        holders = RoleAssignment.objects.filter(
            role_id__in=audience["roles"], user_id=OuterRef("pk")
        )
        matches.append(Q(Exists(holders)))
    if audience.get("organizations"):
        # Paths read now, not when the batch was made: a moved subtree is reached where it is.
        paths = Organization.objects.filter(pk__in=audience["organizations"]).values_list(
            "path", flat=True
        )
        inside = Q()
        for path in paths:
            inside |= Q(organization__path__startswith=path)
        if inside:
            members = Membership.objects.filter(inside, user_id=OuterRef("pk"))
            matches.append(Q(Exists(members)))
    if not matches:
        return User.objects.none()
    match = matches[0]
    for more in matches[1:]:
        match |= more
    queryset = User.objects.live().filter(match, is_active=True)
    scope = audience.get("scope")
    return users_within(queryset, None if scope is None else tuple(scope))
