"""Writes to roles and assignments: every check against privilege escalation lives here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record, changes_between, snapshot
from apps.core.errors import ConflictError, ForbiddenError, ValidationError
from apps.rbac.catalogue import ALL_CODENAMES, MEMBER, OWNER
from apps.rbac.grants import require, require_outranks, user_grants
from apps.rbac.models import Role, RoleAssignment

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.organizations.models import Organization

LAST_OWNER = "The tenant must keep at least one active owner."


def ensure_not_last_owner(user: User) -> None:
    """409 if `user` is the tenant's last active owner (before deleting or deactivating them).

    Locks the owner assignments first, then counts in a fresh statement, so two owners
    removed at the same moment cannot both pass: the second waits and sees the first."""
    with transaction.atomic():
        list(
            RoleAssignment.objects.select_for_update(of=("self",))
            .filter(role__system_key=OWNER, organization__isnull=True)
            .values_list("pk", flat=True)
        )
        holders = set(
            RoleAssignment.objects.filter(
                role__system_key=OWNER,
                organization__isnull=True,
                user__is_active=True,
                user__is_deleted=False,
            ).values_list("user_id", flat=True)
        )
    if user.pk in holders and len(holders) == 1:
        raise ConflictError(LAST_OWNER)


# ------------------------------------------------------------------ helpers

_UNSET: Any = object()
OWN_ROLES = "You cannot change your own roles."


def _catalogue_check(permissions: list[str]) -> list[str]:
    unknown = sorted(set(permissions) - ALL_CODENAMES)
    if unknown:
        raise ValidationError.for_field(
            "permissions", f"Unknown permissions: {', '.join(unknown)}."
        )
    return sorted(set(permissions))


def _holds_all(actor: User, permissions: Iterable[str], scope_path: str | None) -> None:
    """403 unless `actor` holds every permission at least as widely as `scope_path`."""
    grants = user_grants(actor)
    lacking = sorted(p for p in permissions if not grants.covers(p, scope_path))
    if lacking:
        where = "everywhere" if scope_path is None else "in that organization"
        raise ForbiddenError(
            f"You can only grant permissions you hold {where}; you lack: {', '.join(lacking)}."
        )


def _role_permissions(role: Role) -> frozenset[str]:
    return ALL_CODENAMES if role.system_key == OWNER else frozenset(role.permissions)


def _name_free(name: str, exclude: int | None = None) -> None:
    taken = Role.objects.filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ConflictError(ROLE_NAME_TAKEN, details={"name": [ROLE_NAME_TAKEN]})


ROLE_NAME_TAKEN = "A role with this name exists"


# ------------------------------------------------------------------ roles


@transaction.atomic
def role_create(*, actor: User, name: str, description: str = "", permissions: list[str]) -> Role:
    name = name.strip()
    if not name:
        raise ValidationError.for_field("name", "This field may not be blank.")
    permissions = _catalogue_check(permissions)
    require(actor, "roles.manage")
    _holds_all(actor, permissions, None)
    _name_free(name)
    try:
        with transaction.atomic():
            role = Role.objects.create(name=name, description=description, permissions=permissions)
    except IntegrityError:
        raise ConflictError(ROLE_NAME_TAKEN, details={"name": [ROLE_NAME_TAKEN]}) from None
    audit_record(
        action="role.created",
        target=role,
        changes=snapshot(role, ["name", "description", "permissions"]),
    )
    return role


@transaction.atomic
def role_update(
    *,
    actor: User,
    role: Role,
    name: str = _UNSET,
    description: str = _UNSET,
    permissions: list[str] = _UNSET,
) -> Role:
    """Rename, describe or change a role's permissions. Whoever edits must hold every
    permission the role had and will have (so nobody widens, or cripples, a role beyond
    their own reach). The owner role's permissions and system roles' names are fixed."""
    role = Role.objects.select_for_update().get(pk=role.pk)
    require(actor, "roles.manage")
    before = snapshot(role, ["name", "description", "permissions"])
    if name is not _UNSET:
        name = name.strip()
        if not name:
            raise ValidationError.for_field("name", "This field may not be blank.")
        if role.is_system and name != role.name:
            raise ValidationError.for_field("name", "System roles keep their names.")
        _name_free(name, exclude=role.pk)
        role.name = name
    if description is not _UNSET:
        role.description = description
    if permissions is not _UNSET:
        permissions = _catalogue_check(permissions)
        if role.system_key == OWNER and set(permissions) != ALL_CODENAMES:
            raise ValidationError.for_field(
                "permissions", "The owner role always holds every permission."
            )
        _holds_all(actor, set(role.permissions) | set(permissions), None)
        role.permissions = permissions
    changes = changes_between(before, snapshot(role, ["name", "description", "permissions"]))
    if changes:
        role.save()
        audit_record(action="role.updated", target=role, changes=changes)
    return role


@transaction.atomic
def role_delete(*, actor: User, role: Role) -> None:
    require(actor, "roles.manage")
    if role.is_system:
        raise ConflictError("System roles cannot be deleted.")
    _holds_all(actor, role.permissions, None)
    holders = list(role.assignments.values_list("user_id", flat=True))
    audit_record(
        action="role.deleted",
        target=role,
        changes={**snapshot(role, ["name", "permissions"]), "assignments_removed": len(holders)},
    )
    role.delete()


# ------------------------------------------------------------------ assignments


def assignment_audit(action: str, assignment: RoleAssignment) -> None:
    """The audit row of a grant or a revocation (services and the admin alike)."""
    audit_record(
        action=action,
        target_type="user",
        target_id=assignment.user_id,
        changes={
            "assignment_id": assignment.pk,
            "role_id": assignment.role_id,
            "role": assignment.role.name,
            "organization_id": assignment.organization_id,
        },
    )


@transaction.atomic
def role_assign(
    *, actor: User, user: User, role: Role, organization: Organization | None = None
) -> RoleAssignment:
    """Give `user` the role, everywhere or in `organization`'s subtree.

    Refused: on yourself; by anyone who lacks roles.manage there or any of the
    role's permissions there; the owner role scoped to an organization."""
    if actor.pk == user.pk:
        raise ForbiddenError(OWN_ROLES)
    scope = organization.path if organization is not None else None
    if role.system_key == OWNER and organization is not None:
        raise ValidationError.for_field("organization_id", "The owner role cannot be scoped.")
    if not user_grants(actor).covers("roles.manage", scope):
        raise ForbiddenError("You need the permission roles.manage there.")
    _holds_all(actor, _role_permissions(role), scope)
    if RoleAssignment.objects.filter(user=user, role=role, organization=organization).exists():
        raise ConflictError("The user already has this role there.")
    try:
        with transaction.atomic():
            assignment = RoleAssignment.objects.create(
                user=user, role=role, organization=organization, granted_by=actor
            )
    except IntegrityError:
        raise ConflictError("The user already has this role there.") from None
    assignment_audit("role.assigned", assignment)
    return assignment


@transaction.atomic
def role_unassign(*, actor: User, assignment: RoleAssignment) -> None:
    """Take a role back. The same reach is needed as to grant it, and nobody takes a role
    from a user who outranks them (require_outranks); the last owner stays."""
    assignment = (
        RoleAssignment.objects.select_for_update(of=("self",))
        .select_related("role", "organization", "user")
        .get(pk=assignment.pk)
    )
    if actor.pk == assignment.user_id:
        raise ForbiddenError(OWN_ROLES)
    require_outranks(actor, assignment.user)
    scope = assignment.organization.path if assignment.organization is not None else None
    if not user_grants(actor).covers("roles.manage", scope):
        raise ForbiddenError("You need the permission roles.manage there.")
    _holds_all(actor, _role_permissions(assignment.role), scope)
    if assignment.role.system_key == OWNER and assignment.organization_id is None:
        # Lock every owner assignment so two removals at once cannot both pass.
        owners = list(
            RoleAssignment.objects.select_for_update(of=("self",))
            .filter(role__system_key=OWNER, organization__isnull=True)
            .filter(user__is_active=True, user__is_deleted=False)
            .values_list("user_id", flat=True)
        )
        if set(owners) <= {assignment.user_id}:
            raise ConflictError(LAST_OWNER)
    assignment_audit("role.unassigned", assignment)
    assignment.delete()


def owner_grant(*, user: User) -> RoleAssignment:
    """Make `user` an owner, with no checks: for provisioning (the tenant's first admin)."""
    owner = Role.objects.get(system_key=OWNER)
    assignment, _ = RoleAssignment.objects.get_or_create(user=user, role=owner, organization=None)
    return assignment


def member_grant(*, user: User) -> RoleAssignment | None:
    """The member role for a user being created, with no checks (user creation's baseline).

    Written without the model's signals: a user created in this transaction has no
    cached grants anywhere, so the tenant's grants cache (every user's) is left as
    it is instead of being invalidated by each sign-up.
    """
    member = Role.objects.filter(system_key=MEMBER).first()
    if member is None:  # the tenant deleted nothing: system roles cannot be deleted
        return None
    [assignment] = RoleAssignment.objects.bulk_create(
        [RoleAssignment(user=user, role=member, organization=None)]
    )
    return assignment
