from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apps.audit.models import AuditEvent
from apps.core.errors import NotFoundError

if TYPE_CHECKING:
    from apps.accounts.models import User


def audit_event_list(
    *,
    actor: User,
    actor_id: int | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The schema's audit rows, newest first. `actor` holds audit.view, which is tenant-wide
    (or, in the public schema, is a platform operator): the schema is the only scope.
    `since` is inclusive, `until` exclusive."""
    qs = AuditEvent.objects.all()
    if actor_id is not None:
        qs = qs.filter(actor_id=actor_id)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if target_id:
        qs = qs.filter(target_id=target_id)
    if action:
        qs = qs.filter(action=action)
    if action_prefix:
        qs = qs.filter(action__startswith=action_prefix)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs.order_by("-occurred_at", "-id")


def audit_event_get(*, actor: User, event_id: int) -> AuditEvent:
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise NotFoundError("Audit event not found")
    return event
