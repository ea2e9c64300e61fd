"""Distributed tracing (OpenTelemetry), set up only from the standard OTEL_* variables.

Off unless OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set (settings
TRACING_ENABLED, platform_site/settings/telemetry.py): then nothing here runs, the code's
calls into OpenTelemetry's API are its no-ops, and no middleware is added.

When on, two steps, because the web server and the worker fork:

- `tracing_instrument()`, at Django setup in every process: the official
  instrumentations patch psycopg, redis, requests and Celery, and put Django's
  middleware first. Their tracers are the API's proxies: nothing is recorded yet, no
  thread runs, no socket is open, so a master process may fork after it.
- `tracing_start()`, once per process that does the work: the SDK (sampler from
  OTEL_TRACES_SAMPLER, resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, the
  exporters and their export thread). gunicorn's workers start it after the fork
  (platform_site/telemetry.py, post_fork), Celery's pool processes in
  worker_process_init and beat in beat_init (platform_site/celery.py); any other
  process (runserver, manage.py commands) when Django is set up.

One trace follows a request across processes: Celery's instrumentation carries the
context in the task's headers, and each outbox event keeps the context it was recorded
in (`trace_context_capture`), which the dispatcher continues (`trace_context_continued`),
so a task enqueued later by the relay still belongs to the request's trace.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from apps.core.tracing_spans import (
    ContextAttributesProcessor,
    OrphanClientSpansDropped,
    ScrubbingExporter,
    server_span_finish,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

tracer = trace.get_tracer("platform")
# Only traceparent and tracestate are stored with an event: never baggage, which a client
# could fill with anything.
_trace_context_format = TraceContextTextMapPropagator()

_state: dict[str, Any] = {"instrumented": False, "started_pid": None, "deferred": False}


# ------------------------------------------------------------------ setting up


def tracing_instrument() -> None:
    """Install the instrumentations (idempotent). Records nothing until `tracing_start`."""
    if _state["instrumented"]:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    if "OTEL_PROPAGATORS" not in os.environ:
        # W3C trace context only: the default's baggage would carry whatever a client
        # sends in a `baggage` header on to our tasks and to the providers we call.
        from opentelemetry.propagate import set_global_textmap

        set_global_textmap(TraceContextTextMapPropagator())
    DjangoInstrumentor().instrument(response_hook=server_span_finish)
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    _state["instrumented"] = True


def tracing_uninstrument() -> None:
    """Remove the instrumentations again (tests)."""
    if not _state["instrumented"]:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        PsycopgInstrumentor(),
        RedisInstrumentor(),
        RequestsInstrumentor(),
        CeleryInstrumentor(),
    ):
        instrumentor.uninstrument()
    _state["instrumented"] = False


def tracing_defer_start() -> None:
    """This process forks the ones that work (gunicorn's master): Django's setup here must
    not start the SDK; the forked children do."""
    _state["deferred"] = True


def tracing_start_in_child() -> None:
    """In a forked child (gunicorn's post_fork, Celery's worker_process_init): start the
    SDK now if Django is set up (preloaded), else when it is."""
    from django.apps import apps

    _state["deferred"] = False
    if apps.ready:
        tracing_start_configured()


def tracing_django_ready() -> None:
    """apps.core's ready(): instrument when tracing is on; start the SDK unless gunicorn's
    master (`tracing_defer_start`) or Celery's worker or beat is setting Django up: they
    start it from their own hooks, in the process that runs the tasks."""
    from django.conf import settings

    if not settings.TRACING_ENABLED:
        return
    tracing_instrument()
    if not (_state["deferred"] or _celery_worker_initialising()):
        tracing_start_configured()


def _celery_worker_initialising() -> bool:
    # Celery's worker and beat set Django up from their loader's init_worker(), which
    # marks the loader first; a web process or a command never calls it.
    from celery import current_app

    return bool(getattr(current_app.loader, "worker_initialized", False))


def tracing_start_configured() -> TracerProvider | None:
    """The SDK with the exporters of OTEL_TRACES_EXPORTER, once per process; None when off."""
    from django.conf import settings

    if not settings.TRACING_ENABLED:
        return None
    return tracing_start(exporters=[_exporter(name) for name in settings.TRACING_EXPORTERS])


def tracing_start(
    *, exporters: Sequence[SpanExporter], synchronous: Sequence[SpanExporter] = ()
) -> TracerProvider | None:
    """Start the SDK in this process (once: None if it was already started here).
    `exporters` export in batches from a thread of their own, `synchronous` ones as each
    span ends (the console's, and tests')."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    if _state["started_pid"] == os.getpid():
        return None
    resource = Resource.create({"process.pid": os.getpid()})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "platform"}))
    # The sampler of OTEL_TRACES_SAMPLER, as the SDK reads it, behind OrphanClientSpansDropped.
    configured = TracerProvider(shutdown_on_exit=False).sampler
    sampler = cast("Sampler", OrphanClientSpansDropped(configured))  # duck-typed, as below
    provider = TracerProvider(resource=resource, sampler=sampler)
    # Duck-typed, so that importing this module does not import the SDK.
    provider.add_span_processor(cast("SpanProcessor", ContextAttributesProcessor()))
    for exporter in exporters:
        scrubbed = cast("SpanExporter", ScrubbingExporter(exporter))
        # The console shows each span as it ends; the others batch (OTEL_BSP_* variables).
        if isinstance(exporter, ConsoleSpanExporter):
            provider.add_span_processor(SimpleSpanProcessor(scrubbed))
        else:
            provider.add_span_processor(BatchSpanProcessor(scrubbed))
    for exporter in synchronous:
        provider.add_span_processor(
            SimpleSpanProcessor(cast("SpanExporter", ScrubbingExporter(exporter)))
        )
    trace.set_tracer_provider(provider)
    _state["started_pid"] = os.getpid()
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # One line per span: `python3 run.py` prefixes each line with the process's name.
        return ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    # "otlp": protobuf over HTTP; endpoint, headers, timeout and compression from the
    # OTEL_EXPORTER_OTLP_* variables, which the exporter reads itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


# ------------------------------------------------------------------ across the outbox


def trace_context_capture() -> dict[str, str]:
    """The W3C trace context (traceparent, tracestate) of the span being recorded, to be
    kept with an outbox event; empty when tracing is off or nothing is being traced."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _trace_context_format.inject(carrier)
    return carrier


@contextlib.contextmanager
def trace_context_continued(
    carrier: dict[str, str] | None, name: str, attributes: dict[str, str]
) -> Iterator[None]:
    """Run the block in a span that continues the trace `carrier` was captured in (an
    outbox event's), so that tasks enqueued inside it belong to that trace. When the
    block runs in another trace (the relay's), the span links to it. Nothing at all when
    the event was recorded untraced."""
    if not carrier:
        yield
        return
    parent = _trace_context_format.extract(carrier)
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(
            name, kind=SpanKind.PRODUCER, attributes=attributes, links=links
        ):
            yield
    finally:
        otel_context.detach(token)


# ------------------------------------------------------------------ mail


@contextlib.contextmanager
def mail_send_span(connection: Any | None, *, recipients: int) -> Iterator[None]:
    """One span around handing a message to the mail backend: `smtp.send` with the server's
    host and port for SMTP, `mail.send` with the backend's class for the others. Only the
    number of recipients is recorded, never an address: a refused recipient's error names
    it, so the error is recorded by its type alone."""
    if _state["started_pid"] is None:
        yield
        return
    from django.conf import settings
    from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
    from django.utils.module_loading import import_string

    # No connection: the message opens one of settings.EMAIL_BACKEND's.
    backend = type(connection) if connection is not None else import_string(settings.EMAIL_BACKEND)
    attributes: dict[str, Any] = {"mail.recipients": recipients}
    if issubclass(backend, SmtpBackend):
        name = "smtp.send"
        attributes["server.address"] = getattr(connection, "host", settings.EMAIL_HOST)
        attributes["server.port"] = getattr(connection, "port", settings.EMAIL_PORT)
    else:
        name = "mail.send"
        attributes["mail.backend"] = f"{backend.__module__}.{backend.__qualname__}"
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            raise
