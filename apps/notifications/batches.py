"""Sending one notification to many: users, the holders of roles, the members of
organization subtrees.

`batch_create` (the API's service) checks what was asked and who asks, records
the batch and returns at once; the worker resolves the audience and fans out:

    batch_fan_out_task(batch)      resolve the audience (live, active users, deduplicated,
                                   inside the sender's scope), plan chunks of
                                   NOTIFICATION_BATCH_CHUNK users by id range
    batch_chunk_task(batch, i)     notify() each user of chunk i, and send their e-mail

(the tasks are in tasks.py; they call `batch_fan_out` and `batch_chunk_send` here).

Every step may run twice (acks late: a worker killed mid-task gets its message
again) with the effect of once: the plan is written once, under a row lock; a
chunk's notifications carry the batch id as their source event, and
`notify()` writes one notification per (recipient, type, source event); each
delivery is claimed before its provider call and recorded before the next one
(delivery.deliveries_send_now), so a chunk run again sends what the killed run
had not, and at most the one message that was in flight goes out twice.

A chunk is written once its notifications are; it is done once, besides, none of
its deliveries is pending: checked when the chunk's task ends and when `deliver`
settles one of its deliveries (a retry, another channel, a delivery a dead worker
had claimed), whichever comes last. The batch goes queued -> running -> done when
its last chunk is done (failed if the fan-out itself gave up).

The plan and progress live in the batch's `audience` under "progress":
{"bounds": [[first_id, last_id], ...], "chunks_written": [i, ...],
"chunks_done": [i, ...], "failed": n}.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.core.errors import ForbiddenError, ValidationError
from apps.notifications.inline_delivery import batch_deliveries_resume
from apps.notifications.models import Delivery, NotificationBatch
from apps.notifications.notify import notify, notify_many
from apps.notifications.types import NOTIFICATION_TYPES

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.rbac.grants import Grants

logger = structlog.get_logger("apps.notifications.batches")

SEND = "notifications.send"
DEFAULT_CHUNK = 500
# Errors a retry can fix: the database went away or was restarted.
TRANSIENT = (OperationalError, InterfaceError)


def chunk_size() -> int:
    return max(1, int(getattr(settings, "NOTIFICATION_BATCH_CHUNK", DEFAULT_CHUNK)))


# ------------------------------------------------------------------ the audience


def audience_queryset(audience: dict[str, Any]) -> QuerySet[User]:
    """The live, active users the audience names, each once, inside its "scope"
    (None: everywhere; else organization paths the sender's grant covers)."""
    from apps.accounts.models import User
    from apps.organizations.models import Membership, Organization
    from apps.rbac.models import RoleAssignment
    from apps.rbac.selectors import users_within

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
    from apps.accounts.models import User
    from apps.organizations.models import Organization
    from apps.rbac.models import Role
    from apps.rbac.selectors import users_within

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
    from apps.audit.services import audit_record

    audit_record(
        action="notification.batch_created",
        target=batch,
        changes={"type": type, "title": title, "channels": batch.channels, **audience},
    )
    batch_id = str(batch.pk)
    # The task module sits above this one (its tasks call these services): imported when used.
    from apps.notifications.tasks import batch_fan_out_task

    transaction.on_commit(lambda: batch_fan_out_task.delay(batch_id))
    return batch


# ------------------------------------------------------------------ the worker's side


def _progress(batch: NotificationBatch) -> dict[str, Any]:
    return dict((batch.audience or {}).get("progress") or {})


def batch_fan_out(*, batch_id: uuid.UUID) -> list[int]:
    """Plan the batch's chunks (once) and return the chunks still to send."""

    with transaction.atomic():
        batch = NotificationBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.status in (
            NotificationBatch.Status.DONE,
            NotificationBatch.Status.FAILED,
        ):
            return []
        if batch.status == NotificationBatch.Status.QUEUED:
            ids: list[int] = list(
                audience_queryset(batch.audience).order_by("pk").values_list("pk", flat=True)
            )
            size = chunk_size()
            bounds = [[ids[i], ids[min(i + size, len(ids)) - 1]] for i in range(0, len(ids), size)]
            batch.audience = {
                **batch.audience,
                "progress": {"bounds": bounds, "chunks_done": [], "failed": 0},
            }
            batch.total_recipients = len(ids)
            batch.status = NotificationBatch.Status.RUNNING
            fields = ["audience", "total_recipients", "status"]
            if not ids:
                batch.status = NotificationBatch.Status.DONE
                batch.finished_at = timezone.now()
                fields.append("finished_at")
            batch.save(update_fields=fields)
        # Running already: this message came again (the worker died after planning);
        # send what is not counted yet, which a chunk's own dedup makes safe.
        progress = _progress(batch)
        done = set(progress.get("chunks_done", []))
        pending = [i for i in range(len(progress.get("bounds", []))) if i not in done]

    from apps.notifications.tasks import batch_chunk_task

    def enqueue() -> None:
        for index in pending:
            batch_chunk_task.delay(str(batch_id), index)

    transaction.on_commit(enqueue)
    return pending


def batch_chunk_send(*, batch_id: uuid.UUID, index: int) -> int:
    """Notify every user of chunk `index`; returns how many notifications it wrote.

    One `notify_many` call (a fixed number of queries for the chunk, users notified
    before for this batch skipped). Should it fail for a reason a retry cannot fix,
    the chunk goes again one `notify` at a time, so one recipient's problem does
    not hold back the others. If an earlier run had notified some users (it died
    before the chunk was done), what it left unsent is sent now.
    """

    batch = NotificationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return 0
    progress = _progress(batch)
    if index in progress.get("chunks_done", []) or index >= len(progress.get("bounds", [])):
        return 0  # counted already: a message delivered twice
    first, last = progress["bounds"][index]
    recipients = list(
        audience_queryset(batch.audience).filter(pk__gte=first, pk__lte=last).order_by("pk")
    )
    message: dict[str, Any] = {
        "type": batch.type,
        "title": batch.title,
        "body": batch.body,
        "data": batch.data,
        "channels": list(batch.channels) or None,
        "batch": batch,
        "source_event_id": batch.pk,
    }
    failed = 0
    try:
        result = notify_many(
            user_ids=[u.pk for u in recipients], chunk_size=max(1, len(recipients)), **message
        )
        written, repeated = result.created, result.duplicates
    except TRANSIENT:
        raise  # the whole chunk is retried; what was written stays written once
    except Exception:
        logger.exception("batch_chunk_failed", batch_id=str(batch.pk), index=index)
        written = repeated = 0
        for user in recipients:
            try:
                if notify(user=user, **message) is None:
                    repeated += 1
                else:
                    written += 1
            except TRANSIENT:
                raise
            except Exception:
                logger.exception("batch_recipient_failed", batch_id=str(batch.pk), user_id=user.pk)
                failed += 1
    if repeated:
        # An earlier run notified these users and may have died sending to them.
        batch_deliveries_resume(batch=batch, first=first, last=last)
    _chunk_written(batch_id=batch_id, index=index, failed=failed)
    return written


@transaction.atomic
def _chunk_written(*, batch_id: uuid.UUID, index: int, failed: int) -> None:
    batch = NotificationBatch.objects.select_for_update().get(pk=batch_id)
    progress = _progress(batch)
    written = set(progress.get("chunks_written", []))
    if index not in written:
        written.add(index)
        progress["chunks_written"] = sorted(written)
        progress["failed"] = int(progress.get("failed", 0)) + failed
    _chunk_done_if_settled(batch, progress, index)


def batch_delivery_settled(*, batch_id: uuid.UUID, recipient_id: int) -> None:
    """A delivery of the batch to `recipient_id` was settled (sent, failed, skipped) by
    `deliver`: its chunk is done if it is written and nothing of it is pending any more."""
    with transaction.atomic():
        batch = NotificationBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return
        progress = _progress(batch)
        index = next(
            (
                i
                for i, (first, last) in enumerate(progress.get("bounds", []))
                if first <= recipient_id <= last
            ),
            None,
        )
        if index is None or index in progress.get("chunks_done", []):
            return
        if index not in progress.get("chunks_written", []):
            return  # not written yet: the chunk's task checks when it ends
        _chunk_done_if_settled(batch, progress, index)


def _chunk_done_if_settled(batch: NotificationBatch, progress: dict[str, Any], index: int) -> None:
    """Under the batch's row lock: count chunk `index` done if none of its deliveries is
    pending, and the batch done with its last chunk; saves the progress."""
    done = set(progress.get("chunks_done", []))
    fields = ["audience"]
    if index not in done:
        first, last = progress["bounds"][index]
        pending = Delivery.objects.filter(
            notification__batch_id=batch.pk,
            notification__recipient_id__gte=first,
            notification__recipient_id__lte=last,
            status=Delivery.Status.PENDING,
        ).exists()
        if not pending:
            done.add(index)
            progress["chunks_done"] = sorted(done)
        if (
            len(done) >= len(progress.get("bounds", []))
            and batch.status != NotificationBatch.Status.DONE
        ):
            batch.status = NotificationBatch.Status.DONE
            batch.finished_at = timezone.now()
            fields += ["status", "finished_at"]
    batch.audience = {**batch.audience, "progress": progress}
    batch.save(update_fields=fields)


def batch_mark_failed(*, batch_id: uuid.UUID) -> None:
    NotificationBatch.objects.filter(pk=batch_id).exclude(
        status=NotificationBatch.Status.DONE
    ).update(status=NotificationBatch.Status.FAILED, finished_at=timezone.now())
