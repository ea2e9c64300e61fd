"""Writes to roles and assignments: every check against privilege escalation lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.core.errors import ConflictError
from apps.rbac.catalogue import OWNER

if TYPE_CHECKING:
    from apps.accounts.models import User

LAST_OWNER = "The tenant must keep at least one active owner."


def ensure_not_last_owner(user: User) -> None:
    """409 if `user` is the tenant's last active owner (before deleting or deactivating them)."""
    from apps.rbac.models import RoleAssignment

    owners = RoleAssignment.objects.filter(
        role__system_key=OWNER,
        organization__isnull=True,
        user__is_active=True,
        user__is_deleted=False,
    ).values_list("user_id", flat=True)
    holders = set(owners)
    if user.pk in holders and len(holders) == 1:
        raise ConflictError(LAST_OWNER)
