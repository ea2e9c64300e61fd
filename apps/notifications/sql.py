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
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from apps.core.sql import column, table
from apps.core.sql import model_field as _field
from apps.core.sql import quote as _quote
from apps.notifications.models import Delivery, Notification, Preference

if TYPE_CHECKING:
    from apps.accounts.models import User


def live_active_user(user_id: int) -> User | None:
    """The user, if live (not soft-deleted) and active; one statement, no ORM compiling."""
    from apps.accounts.models import User

    found = list(User.objects.raw(_live_active_user_sql(), [user_id]))
    return found[0] if found else None


@functools.cache
def _live_active_user_sql() -> str:
    from apps.accounts.models import User

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


def outcomes_write(rows: Sequence[Delivery]) -> None:
    """Save the ATTEMPT_FIELDS of `rows` in one `UPDATE ... FROM (VALUES ...)`.

    Django's bulk_update builds a CASE per field and row, whose compiling cost
    more than saving the rows one by one (5.8 against 4.5 ms per delivery of a
    chunk); this statement costs one round trip and no compiling (3.4 ms).
    """
    if not rows:
        return
    now = timezone.now()
    for row in rows:
        row.updated_at = now
    fields = [_field(Delivery, name) for name in ATTEMPT_FIELDS]
    pk = Delivery._meta.pk
    columns = [pk, *fields]
    placeholder = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in columns) + ")"
    params: list[Any] = []
    for row in rows:
        params.append(row.pk)
        params.extend(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields)
    assignments = ", ".join(f"{_quote(f.column)} = v.{_quote(f.column)}" for f in fields)
    names = ", ".join(_quote(f.column) for f in columns)
    sql = (
        f"UPDATE {table(Delivery)} AS d SET {assignments} "  # noqa: S608 (model names)
        f"FROM (VALUES {', '.join([placeholder] * len(rows))}) AS v({names}) "
        f"WHERE d.{_quote(pk.column)} = v.{_quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
