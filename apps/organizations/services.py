"""Every write to the organization tree and its memberships, each audited in its transaction.

Writes that read or change paths (create under a parent, move, delete) hold a
transaction-level advisory lock on the tenant's tree, then re-read the nodes
they act on: two moves in one tenant cannot interleave and write paths computed
from a parent's stale path (a row lock on the nodes is not enough: a move's
UPDATE would not see a child inserted under the old path after it started).

`actor` is whose grants are checked (organizations.manage where the node is and
where it goes); None for the admin and commands, which check nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Max, Value, When
from django.db.models.functions import Concat, Now, Substr

from apps.accounts.models import User
from apps.audit.services import audit_record, changes_between, snapshot
from apps.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from apps.organizations.models import TYPE_VALIDATOR, Membership, Organization
from apps.organizations.selectors import MANAGE, TREE_ORDER, parent_get
from apps.rbac.grants import grants_changed, require, require_outranks, user_grants
from apps.rbac.selectors import users_within

# 32 levels (depth 0 to 31): a path then holds at most 32 ids, well inside its 1,000 characters.
MAX_LEVELS = 32
MAX_DEPTH = MAX_LEVELS - 1

NAME_TAKEN = "A sibling organization already has this name."
ALREADY_MEMBER = "This user is already a member of the organization."
UNKNOWN_USER = "No such user."
SNAPSHOT_FIELDS = ("name", "type", "parent", "path", "depth")

_UNSET: Any = object()


def _tree_lock() -> None:
    """Serialise the tenant's tree writes until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':org-tree'))")


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError.for_field("name", "This field may not be blank.")
    if len(name) > 200:
        raise ValidationError.for_field("name", "At most 200 characters.")
    return name


def _check_type(type: str) -> str:
    try:
        TYPE_VALIDATOR(type)
    except DjangoValidationError as exc:
        raise ValidationError(details={"type": list(exc.messages)}) from None
    return type


def _name_free(name: str, parent_id: int | None, exclude: int | None = None) -> None:
    siblings = Organization.objects.filter(parent_id=parent_id, name__iexact=name)
    if exclude is not None:
        siblings = siblings.exclude(pk=exclude)
    if siblings.exists():
        raise ConflictError(NAME_TAKEN, details={"name": [NAME_TAKEN]})


def _too_deep(levels: int) -> ValidationError:
    return ValidationError.for_field(
        "parent_id", f"The tree is at most {MAX_LEVELS} levels deep; this would make {levels}."
    )


# ------------------------------------------------------------------ nodes


@transaction.atomic
def organization_create(
    *, actor: User | None, name: str, type: str = "team", parent_id: int | None = None
) -> Organization:
    """A node under `parent_id` (None: a root, which needs organizations.manage unscoped)."""
    name = _clean_name(name)
    _check_type(type)
    if parent_id is None and actor is not None:
        require(actor, MANAGE)
    _tree_lock()
    parent = None
    if parent_id is not None:
        parent = parent_get(actor=actor, parent_id=parent_id, for_update=True)
    depth = parent.depth + 1 if parent is not None else 0
    if depth > MAX_DEPTH:
        raise _too_deep(depth + 1)
    _name_free(name, parent_id)
    try:
        with transaction.atomic():
            organization = Organization.objects.create(
                name=name, type=type, parent=parent, depth=depth
            )
    except IntegrityError:
        raise ConflictError(NAME_TAKEN, details={"name": [NAME_TAKEN]}) from None
    # The path ends with the node's own id, known once inserted.
    organization.path = f"{parent.path if parent is not None else '/'}{organization.pk}/"
    organization.save(update_fields=["path"])
    audit_record(
        action="organization.created",
        target=organization,
        changes=snapshot(organization, SNAPSHOT_FIELDS),
    )
    return organization


@transaction.atomic
def organization_update(
    *, organization: Organization, name: str = _UNSET, type: str = _UNSET
) -> Organization:
    """Rename or retype a node (its place in the tree changes only by a move)."""
    node = Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if node is None:
        raise NotFoundError("Organization not found")
    before = snapshot(node, ["name", "type"])
    if name is not _UNSET:
        node.name = _clean_name(name)
        if node.name != before["name"]:
            _name_free(node.name, node.parent_id, exclude=node.pk)
    if type is not _UNSET:
        node.type = _check_type(type)
    changes = changes_between(before, snapshot(node, ["name", "type"]))
    if changes:
        try:
            with transaction.atomic():
                node.save(update_fields=[*changes, "updated_at"])
        except IntegrityError:
            raise ConflictError(NAME_TAKEN, details={"name": [NAME_TAKEN]}) from None
        audit_record(action="organization.updated", target=node, changes=changes)
    return node


@transaction.atomic
def organization_move(
    *, actor: User | None, organization: Organization, parent_id: int | None
) -> Organization:
    """Put `organization` (with its subtree) under `parent_id`, or make it a root (None).

    The subtree's paths and depths, and the node's parent, change in one UPDATE.
    Moving a node under itself or one of its descendants is a 422 on parent_id."""
    if parent_id is None and actor is not None:
        require(actor, MANAGE)
    _tree_lock()
    # Re-read under the lock: a move that committed meanwhile may have changed the paths.
    node = Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if node is None:
        raise NotFoundError("Organization not found")
    if actor is not None:
        require(actor, MANAGE, node)
    parent = None
    if parent_id is not None:
        if parent_id == node.pk:
            raise ValidationError.for_field(
                "parent_id", "An organization cannot be moved under itself."
            )
        parent = parent_get(actor=actor, parent_id=parent_id, for_update=True)
        if node.contains(parent):
            raise ValidationError.for_field(
                "parent_id", "An organization cannot be moved under one of its descendants."
            )
    if parent_id == node.parent_id:
        return node

    old_prefix = node.path
    new_prefix = f"{parent.path if parent is not None else '/'}{node.pk}/"
    delta = (parent.depth + 1 if parent is not None else 0) - node.depth
    deepest = Organization.objects.filter(path__startswith=old_prefix).aggregate(
        deepest=Max("depth")
    )["deepest"]
    if deepest + delta > MAX_DEPTH:
        raise _too_deep(deepest + delta + 1)
    _name_free(node.name, parent_id, exclude=node.pk)

    try:
        with transaction.atomic():
            Organization.objects.filter(path__startswith=old_prefix).update(
                path=Concat(Value(new_prefix), Substr("path", len(old_prefix) + 1)),
                depth=F("depth") + delta,
                parent_id=Case(
                    When(pk=node.pk, then=Value(parent_id)),
                    default=F("parent_id"),
                    output_field=BigIntegerField(),
                ),
                updated_at=Case(When(pk=node.pk, then=Now()), default=F("updated_at")),
            )
    except IntegrityError:
        raise ConflictError(NAME_TAKEN, details={"name": [NAME_TAKEN]}) from None
    old_parent_id = node.parent_id
    node.refresh_from_db()
    # Grants are cached with the paths of their organizations: all of them are stale now.
    grants_changed()
    audit_record(
        action="organization.moved",
        target=node,
        changes={"parent": [old_parent_id, parent_id], "path": [old_prefix, new_prefix]},
    )
    return node


@transaction.atomic
def organization_delete(*, organization: Organization, cascade: bool = False) -> list[int]:
    """Delete a node; with `cascade` its whole subtree and their memberships (role
    assignments scoped to them go through the foundation's FK cascade). Without it, a
    node with children or members is a 409. Returns the deleted ids, in tree order.

    One audit row, on the node named, lists every deleted id and the memberships removed."""
    _tree_lock()
    node = Organization.objects.select_for_update().filter(pk=organization.pk).first()
    if node is None:
        raise NotFoundError("Organization not found")
    subtree = Organization.objects.filter(path__startswith=node.path)
    members = Membership.objects.filter(organization__path__startswith=node.path)
    if not cascade:
        children = node.children.count()
        own_members = node.memberships.count()
        if children or own_members:
            raise ConflictError(
                f"The organization has {children} child organization(s) and {own_members} "
                "member(s); delete with cascade=true to delete them too.",
                details={"children": [children], "members": [own_members]},
            )
    rows = list(subtree.order_by(TREE_ORDER).values_list("id", "depth"))
    audit_record(
        action="organization.deleted",
        target=node,
        changes={
            **snapshot(node, SNAPSHOT_FIELDS),
            "deleted_ids": [pk for pk, _ in rows],
            "memberships_removed": list(
                members.order_by("organization_id", "user_id").values_list(
                    "organization_id", "user_id"
                )
            ),
        },
    )
    # Deepest level first: a parent is PROTECTed while it has children, even ones being
    # deleted in the same call. At most MAX_LEVELS statements; Django's collector cascades
    # memberships and role assignments and sends the signals (the grants cache hears them).
    for depth in sorted({depth for _, depth in rows}, reverse=True):
        subtree.filter(depth=depth).delete()
    grants_changed()
    return [pk for pk, _ in rows]


# ------------------------------------------------------------------ members


@transaction.atomic
def member_add(
    *, actor: User | None, organization: Organization, user_id: int, title: str = ""
) -> Membership:
    """Make a live user of this tenant a member (422 on user_id for an unknown or deleted
    user, 409 if already one).

    A member falls under whoever manages users in the subtree, so `actor` must already
    manage that user: users.manage reaching them, and every permission they hold (403).
    None: the system (single sign-on's provisioning), which checks nothing."""
    user = User.objects.live().filter(pk=user_id).first()
    if user is None:
        raise ValidationError.for_field("user_id", UNKNOWN_USER)
    if actor is not None:
        _require_manages(actor, user)
    if Membership.objects.filter(organization=organization, user_id=user_id).exists():
        raise ConflictError(ALREADY_MEMBER, details={"user_id": [ALREADY_MEMBER]})
    title = title.strip()
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                organization=organization, user_id=user_id, title=title
            )
    except IntegrityError:
        raise ConflictError(ALREADY_MEMBER, details={"user_id": [ALREADY_MEMBER]}) from None
    audit_record(
        action="organization.member_added",
        target=organization,
        changes={"user_id": user_id, "title": title},
    )
    return membership


NOT_YOUR_USER = "You can only add users you manage (users.manage for them)."


def _require_manages(actor: User, user: User) -> None:
    scope = user_grants(actor).scope("users.manage")
    if not users_within(User.objects.filter(pk=user.pk), scope).exists():
        raise ForbiddenError(NOT_YOUR_USER)
    require_outranks(actor, user)


@transaction.atomic
def member_update(*, membership: Membership, title: str) -> Membership:
    title = title.strip()
    if title == membership.title:
        return membership
    old = membership.title
    membership.title = title
    membership.save(update_fields=["title"])
    audit_record(
        action="organization.member_updated",
        target=membership.organization,
        changes={"user_id": membership.user_id, "title": [old, title]},
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    audit_record(
        action="organization.member_removed",
        target=membership.organization,
        changes={"user_id": membership.user_id, "title": membership.title},
    )
    membership.delete()
