"""Per-request (and per-task) context that logs, events and envelopes read.

Context variables rather than thread locals, so they follow the code into
`asgiref` thread hops and stay correct under an ASGI server.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
request_var: ContextVar[HttpRequest | None] = ContextVar("request", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_request() -> HttpRequest | None:
    """The request being served (for the audit log: who, from where), or None in a task."""
    return request_var.get()
