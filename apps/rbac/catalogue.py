"""Every permission the platform knows: declared here, in code, and nowhere else.

A role holds codenames from this catalogue; an API view declares the codename
it needs (apps/rbac/drf.py). `GET /api/v1/permissions` lists it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    codename: str
    description: str
    scopable: bool  # whether a grant scoped to an organization subtree means anything


CATALOGUE: tuple[Permission, ...] = (
    Permission("users.view", "See the tenant's users (scoped: members of the subtree).", True),
    Permission(
        "users.manage",
        "Create, edit, deactivate, delete and restore users (scoped: members of the subtree; "
        "creating a user needs it unscoped).",
        True,
    ),
    Permission(
        "organizations.view", "See organizations and their members (scoped: the subtree).", True
    ),
    Permission(
        "organizations.manage",
        "Create, rename, move and delete organizations and manage their members "
        "(scoped: inside the subtree).",
        True,
    ),
    Permission("roles.view", "See roles and who holds them.", False),
    Permission(
        "roles.manage",
        "Create, edit and delete roles, and grant or revoke them (only permissions the granter "
        "holds, at a scope the granter holds them).",
        True,
    ),
    Permission("audit.view", "Read the audit log.", False),
    Permission("notifications.send", "Send notifications to users (the notifications API).", True),
    Permission(
        "tenant.manage", "Reserved for the tenant's owners: everything, and owner grants.", False
    ),
)

BY_CODENAME: dict[str, Permission] = {p.codename: p for p in CATALOGUE}
ALL_CODENAMES: frozenset[str] = frozenset(BY_CODENAME)

# The roles every tenant starts with (created by migration, so the template
# schema carries them into each new tenant). Owners hold every permission,
# including ones added to the catalogue later.
OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
SYSTEM_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    OWNER: ("Owns the tenant: every permission, now and in future.", tuple(sorted(ALL_CODENAMES))),
    ADMIN: (
        "Runs the tenant day to day: every permission but tenant.manage.",
        tuple(sorted(ALL_CODENAMES - {"tenant.manage"})),
    ),
    MEMBER: ("Every user's baseline: sees the organization tree.", ("organizations.view",)),
}
