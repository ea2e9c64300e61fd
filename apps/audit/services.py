"""`audit_record`: the one way an audit row is written.

Who and from where come from the request being served (apps.core.context),
so services need not pass them along; in a task or a command the actor is
the system (no actor) unless given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models

from apps.audit.models import AuditEvent
from apps.core.context import current_request, current_request_id
from apps.core.net import client_ip
from apps.core.tenancy import current_schema

if TYPE_CHECKING:
    from django.http import HttpRequest

    from apps.accounts.models import User

_FROM_REQUEST: Any = object()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of `instance`, JSON-ready (foreign keys as ids)."""
    out: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        out[name] = _plain(getattr(instance, attname))
    return out


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value differs."""
    return {
        name: [_plain(before.get(name)), _plain(after.get(name))]
        for name in after
        if _plain(before.get(name)) != _plain(after.get(name))
    }


def _request_actor(request: HttpRequest | None) -> tuple[User | None, str]:
    """The request's user as (actor, actor_email).

    Only a user of the schema being written to can be the actor row: an operator
    on the public host provisioning a tenant is a user of the public schema, and
    their id would name nobody (or somebody else) here. They are kept by address.
    """
    user = getattr(request, "user", None) if request is not None else None
    if user is None or not user.is_authenticated:
        return None, ""
    tenant = getattr(request, "tenant", None)
    if tenant is not None and tenant.schema_name != current_schema():
        return None, str(getattr(user, "email", "") or "")
    return user, str(getattr(user, "email", "") or "")


def _ip_or_none(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None  # e.g. a Unix socket: no address to record


def audit_record(
    *,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int | None = None,
    changes: Mapping[str, Any] | None = None,
    actor: User | None = _FROM_REQUEST,
) -> AuditEvent:
    """Write one audit row in the current schema (inside the caller's transaction)."""
    request = current_request()
    if actor is _FROM_REQUEST:
        actor, actor_email = _request_actor(request)
    else:
        actor_email = getattr(actor, "email", "") or ""
    if target is not None:
        target_type = target_type or target._meta.model_name or ""
        target_id = target.pk if target_id is None else target_id
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=actor_email,
        action=action,
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        changes=_plain(dict(changes or {})),
        ip_address=_ip_or_none(client_ip(request)) if request is not None else None,
        request_id=current_request_id() or "",
    )
