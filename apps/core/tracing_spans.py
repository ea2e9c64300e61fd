"""What the tracing SDK does with spans (apps/core/tracing.py starts it): which are
recorded, what they carry, and what is taken out of them before they leave the process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class OrphanClientSpansDropped:
    """A client span (SQL, Redis, SMTP, HTTP) outside any trace is not recorded: beat's
    schedule polls, a solo worker's broker polls, connection checks between tasks would
    each make a one-span trace every few seconds. Every other decision is the
    configured sampler's (OTEL_TRACES_SAMPLER)."""

    def __init__(self, configured: Any) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> Any:
        from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"OrphanClientSpansDropped{{{self.configured.get_description()}}}"


class ContextAttributesProcessor:
    """Gives every span the tenant (schema) it runs in and, in a request, the request id
    and the user's id (never more of the user). The server span gets them when the
    response is ready (`_server_span_finish`): it starts before the tenant is known."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.kind is SpanKind.SERVER:
            return
        from django.db import connection

        from apps.core.context import current_request, current_request_id

        schema = getattr(connection, "schema_name", None)
        if schema:
            span.set_attribute("tenant", schema)
        request_id = current_request_id()
        if request_id:
            span.set_attribute("request_id", request_id)
        request = current_request()
        if request is not None:
            _set_user(span, request)

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _set_user(span: Any, request: HttpRequest) -> None:
    from apps.core.middleware import request_user_id

    user_id = request_user_id(request)
    if user_id is not None:
        span.set_attribute("enduser.id", str(user_id))


def server_span_finish(span: Any, request: HttpRequest, response: HttpResponse) -> None:
    """Django instrumentation's response hook: tenant, user and request id on the server
    span (it started before the tenant and the user were known)."""
    if not span.is_recording():
        return
    tenant = getattr(request, "tenant", None)
    schema = getattr(tenant, "schema_name", None)
    if schema:
        span.set_attribute("tenant", schema)
    request_id = response.get("X-Request-ID")
    if request_id:
        span.set_attribute("request_id", request_id)
    _set_user(span, request)


class ScrubbingExporter:
    """Hands spans on to `exporter` without what may hold a secret or a device's address:
    URLs lose their query string (an OIDC callback's code and state), an outbound call's
    URL keeps only its origin (a push endpoint's path addresses a device), and exception
    messages, stack traces and status descriptions are redacted as log lines are
    (apps/core/logging.py). SQL has placeholders and Redis commands `?` already."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[Any]) -> Any:
        return self.exporter.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))


_URL_ATTRIBUTES = ("http.url", "url.full")
_TEXT_ATTRIBUTES = ("exception.message", "exception.stacktrace")


def _scrubbed(span: Any) -> Any:
    from urllib.parse import urlsplit, urlunsplit

    from opentelemetry.sdk.trace import Event, ReadableSpan

    from apps.core.logging import redact_text

    attributes = {k: v for k, v in (span.attributes or {}).items() if k != "url.query"}
    for key in _URL_ATTRIBUTES:
        if isinstance(attributes.get(key), str):
            parts = urlsplit(attributes[key])
            path = "" if span.kind is SpanKind.CLIENT else parts.path
            attributes[key] = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    if isinstance(attributes.get("http.target"), str):
        attributes["http.target"] = attributes["http.target"].partition("?")[0]
    events = [
        Event(
            event.name,
            {
                k: redact_text(v) if k in _TEXT_ATTRIBUTES and isinstance(v, str) else v
                for k, v in (event.attributes or {}).items()
            },
            event.timestamp,
        )
        for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_text(status.description))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
