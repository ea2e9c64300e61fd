"""Sending one notification to many, the API's side: check what was asked and who asks,
record the batch, and hand it to the worker once committed (`batch_fan_out_task`; the
worker's side is batches.py).

It imports tasks.py (the batch goes to `batch_fan_out_task`), so no module below
tasks.py imports it: the API does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import ForbiddenError, ValidationError
from apps.notifications.audience import audience_queryset
from apps.notifications.models import NotificationBatch
from apps.notifications.tasks import batch_fan_out_task
from apps.notifications.types import NOTIFICATION_TYPES
from apps.organizations.models import Organization
from apps.rbac.models import Role
from apps.rbac.selectors import users_within

if TYPE_CHECKING:
    from apps.rbac.grants import Grants

SEND = "notifications.send"


def _listed(ids: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _unknown(model: Any, ids: list[int], *, live: bool = False) -> list[int]:
    manager = model.objects.live() if live else model.objects.all()
    found = set(manager.filter(pk__in=ids).values_list("pk", flat=True))
    return [i for i in ids if i not in found]


def _unique(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


@transaction.atomic
def batch_create(
    *,
    sender: User,
    grants: Grants,
    type: str,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    channels: list[str] | None = None,
    users: list[int] | None = None,
    roles: list[int] | None = None,
    organizations: list[int] | None = None,
) -> NotificationBatch:
    """Check and record a send; the worker resolves the audience and sends.

    422: unknown or security type, unknown ids, nobody named or nobody reachable.
    403: a sender whose grant is scoped names an organization outside their subtrees,
    or a user who is not a member inside them (role holders are narrowed to those
    members instead: a role spans the tenant).
    """
    kind = NOTIFICATION_TYPES.get(type)
    if kind is None:
        raise ValidationError(details={"type": ["Unknown notification type."]})
    if kind.security:
        raise ValidationError(details={"type": ["Security notices are sent by the platform only."]})
    users, roles, organizations = (
        _unique(users or []),
        _unique(roles or []),
        _unique(organizations or []),
    )
    if not (users or roles or organizations):
        raise ValidationError(
            details={"non_field_errors": ["Name at least one user, role or organization."]}
        )

    errors: dict[str, list[str]] = {}
    for field, model, ids, live in (
        ("users", User, users, True),
        ("roles", Role, roles, False),
        ("organizations", Organization, organizations, False),
    ):
        missing = _unknown(model, ids, live=live) if ids else []
        if missing:
            errors[field] = [f"Unknown ids: {_listed(missing)}."]
    if errors:
        raise ValidationError(details=errors)

    scope = grants.scope(SEND)
    if scope is not None:
        outside: dict[str, list[str]] = {}
        orgs = Organization.objects.filter(pk__in=organizations).only("id", "path")
        refused_orgs = sorted(o.pk for o in orgs if not grants.allows(SEND, o))
        if refused_orgs:
            outside["organizations"] = [f"Outside your organizations: {_listed(refused_orgs)}."]
        if users:
            inside = set(
                users_within(User.objects.filter(pk__in=users), scope).values_list("pk", flat=True)
            )
            refused_users = [u for u in users if u not in inside]
            if refused_users:
                outside["users"] = [f"Not members of your organizations: {_listed(refused_users)}."]
        if outside:
            raise ForbiddenError(
                f"You may send ({SEND}) only inside your organizations.", details=outside
            )

    audience: dict[str, Any] = {
        "users": users,
        "roles": roles,
        "organizations": organizations,
        "scope": None if scope is None else list(scope),
    }
    if not audience_queryset(audience).exists():
        raise ValidationError(
            details={"non_field_errors": ["Nobody to send to: no active user in this audience."]}
        )
    batch = NotificationBatch.objects.create(
        created_by=sender,
        type=type,
        title=title,
        body=body,
        data=data or {},
        channels=list(dict.fromkeys(channels or [])),
        audience=audience,
    )
    audit_record(
        action="notification.batch_created",
        target=batch,
        changes={"type": type, "title": title, "channels": batch.channels, **audience},
    )
    batch_id = str(batch.pk)
    transaction.on_commit(lambda: batch_fan_out_task.delay(batch_id))
    return batch
