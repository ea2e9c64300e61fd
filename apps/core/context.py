"""Per-request (and per-task) context that logs, events and envelopes read.

Context variables rather than thread locals, so they follow the code into
`asgiref` thread hops and stay correct under an ASGI server.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
