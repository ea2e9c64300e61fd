"""The notification path's hottest statements, written out instead of built by the ORM.

On the 2-core machine the benchmarks run on, building and compiling a simple
ORM query costs 0.6 to 0.7 ms, more than the round trip it makes; a welcome
notification made five of them before its e-mail went out. These statements
take their table and column names from the models' `_meta` (the texts are
built once per process) and their values
through each field's own `get_db_prep_save`, so they follow the models; the
tests check them against what the ORM writes and reads. Like bulk_create and
update, they send no model signals: none is connected to these models (a
receiver added to Notification or Delivery would not hear these writes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field

from apps.accounts.models import User
from apps.core.sql import column, table
from apps.core.sql import model_field as _field
from apps.core.sql import quote as _quote
from apps.notifications.models import Delivery, Notification, Preference


def live_active_user(user_id: int) -> User | None:
    """The user, if live (not soft-deleted) and active; one statement, no ORM compiling."""
    found = list(User.objects.raw(_live_active_user_sql(), [user_id]))
    return found[0] if found else None


@functools.cache
def _live_active_user_sql() -> str:
    opts = User._meta
    return (
        f"SELECT * FROM {table(User)} "  # noqa: S608 (model names)
        f"WHERE {_quote(opts.pk.column)} = %s "
        f"AND NOT {column(User, 'is_deleted')} "
        f"AND {column(User, 'is_active')}"
    )


def disabled_channels(user_ids: Sequence[int], type: str) -> set[tuple[int, str]]:
    """(user_id, channel) pairs the users turned off for notifications of `type`."""
    if not user_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_disabled_channels_sql(), [list(user_ids), type])
        return {(int(user_id), str(name)) for user_id, name in cursor.fetchall()}


@functools.cache
def _disabled_channels_sql() -> str:
    user, kind = _field(Preference, "user"), _field(Preference, "type")
    channel, enabled = _field(Preference, "channel"), _field(Preference, "enabled")
    return (
        f"SELECT {_quote(user.column)}, {_quote(channel.column)} "  # noqa: S608 (model names)
        f"FROM {table(Preference)} "
        f"WHERE {_quote(user.column)} = ANY(%s) AND {_quote(kind.column)} = %s "
        f"AND NOT {_quote(enabled.column)}"
    )


_NOTIFICATION_FIELDS = (
    "recipient", "type", "title", "body", "data", "is_security", "read_at", "batch",
    "source_event_id", "created_at",
)  # fmt: skip


def notification_insert_once(notification: Notification) -> bool:
    """Insert `notification` (setting its id); False, inserting nothing, if its recipient
    was already notified of its type for its source event (`notif_once_per_event`).

    `INSERT ... ON CONFLICT DO NOTHING` on that partial unique index: no savepoint
    to survive the repeat, and one statement.
    """
    fields = _notification_fields()
    values = [f.get_db_prep_save(f.pre_save(notification, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_notification_insert_sql(), values)
        row = cursor.fetchone()
    if row is None:
        return False
    notification.pk = row[0]
    notification._state.adding = False
    notification._state.db = connection.alias
    return True


@functools.cache
def _notification_fields() -> list[Field[Any, Any]]:
    return [_field(Notification, name) for name in _NOTIFICATION_FIELDS]


@functools.cache
def _notification_insert_sql() -> str:
    fields = _notification_fields()
    recipient, kind, source = (
        column(Notification, name) for name in ("recipient", "type", "source_event_id")
    )
    return (
        f"INSERT INTO {table(Notification)} "  # noqa: S608 (model names)
        f"({', '.join(_quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({recipient}, {kind}, {source}) WHERE {source} IS NOT NULL DO NOTHING "
        f"RETURNING {_quote(Notification._meta.pk.column)}"
    )


# What an attempt changes on its delivery row.
ATTEMPT_FIELDS = [
    "status", "attempts", "last_error", "provider", "next_attempt_at", "updated_at",
    "sent_at", "provider_message_id",
]  # fmt: skip


@dataclass(frozen=True)
class Step:
    """What `delivery_step` did."""

    recorded: bool  # the outcome was written: the claim it carried was still held
    claimed: bool  # the delivery to claim is now claimed by the caller
    # The delivery to claim as the statement found it (why it was not claimed); status
    # None: it is gone.
    status: str | None = None
    claimed_at: datetime | None = None
    next_attempt_at: datetime | None = None


def delivery_step(
    *,
    record: Delivery | None,
    claim: Delivery | None,
    now: datetime,
    claimable_before: datetime,
    due_before: datetime,
) -> Step:
    """Record the outcome of `record` and claim `claim`, in one statement (one commit).

    `record`: its ATTEMPT_FIELDS are written and its claim cleared, provided the row
    still carries the claim `record.claimed_at` (a claim that expired and was taken
    by another worker is not overwritten). `claim`: claimed at `now` if it is pending,
    unclaimed or claimed before `claimable_before`, and due by `due_before`; its
    ATTEMPT_FIELDS are then set from the row, so an attempt counts from what is stored.
    """
    fields = _attempt_fields()
    params: list[Any] = []
    if record is not None:
        record.updated_at = now
        params.extend(f.get_db_prep_save(getattr(record, f.attname), connection) for f in fields)
        params.extend([record.pk, record.claimed_at])
    else:
        params.extend([None] * (len(fields) + 2))
    claim_id = claim.pk if claim is not None else None
    params.extend([now, claim_id, Delivery.Status.PENDING, claimable_before, due_before, claim_id])
    with connection.cursor() as cursor:
        cursor.execute(_step_sql(), params)
        row = cursor.fetchone()
    recorded, claimed = bool(row[0]), bool(row[1])
    values, (status, claimed_at, next_attempt_at) = row[2 : 2 + len(fields)], row[-3:]
    if record is not None and recorded:
        record.claimed_at = None
    if claim is not None and claimed:
        for f, value in zip(fields, values, strict=True):
            setattr(claim, f.attname, value)
        claim.claimed_at = now
    return Step(recorded, claimed, status, claimed_at, next_attempt_at)


@functools.cache
def _attempt_fields() -> list[Field[Any, Any]]:
    return [_field(Delivery, name) for name in ATTEMPT_FIELDS]


@functools.cache
def _step_sql() -> str:
    fields = _attempt_fields()
    delivery = table(Delivery)
    pk = Delivery._meta.pk
    key = f"{_quote(pk.column)} = %s::{pk.db_type(connection)}"
    claimed_at, status, next_at = (
        column(Delivery, name) for name in ("claimed_at", "status", "next_attempt_at")
    )
    moment = _field(Delivery, "claimed_at").db_type(connection)
    assignments = ", ".join(f"{_quote(f.column)} = %s::{f.db_type(connection)}" for f in fields)
    returned = ", ".join(_quote(f.column) for f in fields)
    # Two data-modifying CTEs on two different rows; `d` is the row to claim as the
    # statement's snapshot saw it, to tell why a claim failed.
    return (
        f"WITH recorded AS (UPDATE {delivery} SET {assignments}, {claimed_at} = NULL "  # noqa: S608 (model names)
        f"WHERE {key} AND {claimed_at} = %s::{moment} RETURNING 1), "
        f"claimed AS (UPDATE {delivery} SET {claimed_at} = %s::{moment} "
        f"WHERE {key} AND {status} = %s "
        f"AND ({claimed_at} IS NULL OR {claimed_at} < %s::{moment}) "
        f"AND ({next_at} IS NULL OR {next_at} <= %s::{moment}) RETURNING {returned}) "
        f"SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM claimed), c.*, "
        f"d.{status}, d.{claimed_at}, d.{next_at} "
        f"FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON TRUE "
        f"LEFT JOIN {delivery} AS d ON d.{key}"
    )
