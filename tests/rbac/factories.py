"""Roles and assignments for tests (call inside `tenant_context`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from apps.accounts.models import User
from apps.organizations.models import Organization
from apps.rbac.models import Role, RoleAssignment

_names = itertools.count()


def grant_role(
    user: User,
    permissions: Sequence[str],
    organization: Organization | None = None,
    *,
    name: str | None = None,
) -> RoleAssignment:
    """A fresh role holding `permissions` (named `name`, else a new `role-<n>`), assigned to
    `user`, tenant-wide or at `organization`."""
    role = Role.objects.create(name=name or f"role-{next(_names)}", permissions=list(permissions))
    return RoleAssignment.objects.create(user=user, role=role, organization=organization)
