"""Tracing in one process: what the spans of a request carry, its log lines, the outbox's
trace context, the SMTP span, `traceparent` on outgoing calls, and nothing at all when
tracing is off. (Across processes, with a real worker: test_tracing_worker.py.)"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.core.mail import get_connection
from django.db import connection
from django_tenants.utils import tenant_context
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from apps.core.outbound import OutboundPolicy, OutboundSession
from apps.core.tracing import tracer
from apps.jobs.events import event_dispatch, event_receiver, event_record
from apps.notifications.channels.email import build_email, send_classified
from platform_site.celery import app as celery_app
from tests.conftest import ADMIN_PASSWORD
from tests.core.tracing_support import hex_id, spans  # noqa: F401  (a fixture)
from tests.worker_tasks import record_schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def traced_connection(db: None) -> Iterator[None]:
    """The test's database connection (inside its transaction) traced from now on."""
    connection.ensure_connection()
    raw = connection.connection
    PsycopgInstrumentor.instrument_connection(raw)
    yield
    PsycopgInstrumentor.uninstrument_connection(raw)
    raw._is_instrumented_by_opentelemetry = False  # which uninstrument_connection leaves set


# ------------------------------------------------------------------ off


_PROBE = """
import json, django
django.setup()
import psycopg
from django.conf import settings
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
print(json.dumps({
    "enabled": settings.TRACING_ENABLED,
    "middleware": settings.MIDDLEWARE,
    "provider": type(trace.get_tracer_provider()).__name__,
    "psycopg_patched": hasattr(psycopg.connect, "__wrapped__"),
}))
"""


def _probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "platform_site.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_without_otel_variables_nothing_is_installed_and_with_them_it_is() -> None:
    off = _probe()
    disabled = _probe(OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    on = _probe(OTEL_TRACES_EXPORTER="console")

    for probe in (off, disabled):
        assert probe["enabled"] is False
        assert not any("opentelemetry" in m for m in probe["middleware"])
        assert probe["provider"] == "ProxyTracerProvider"  # no SDK, no span processor
        assert probe["psycopg_patched"] is False
    assert on["enabled"] is True
    assert on["middleware"][0].startswith("opentelemetry.instrumentation.django")
    assert on["middleware"][1:] == off["middleware"]
    assert on["provider"] == "TracerProvider"
    assert on["psycopg_patched"] is True
    # An OTLP endpoint alone turns it on too (exporter otlp), and nothing else does.
    assert _probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")["enabled"] is True
    assert _probe(OTEL_SERVICE_NAME="platform")["enabled"] is False


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "maybe"},
    ],
)
def test_a_configuration_this_install_cannot_honour_is_refused_at_start(env) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "platform_site.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "OTEL_" in result.stderr


# ------------------------------------------------------------------ a request


@pytest.mark.django_db
def test_a_request_is_a_server_span_with_its_tenant_user_and_request_id_and_its_sql_inside(
    spans,  # noqa: F811
    traced_connection,
    api,
    tenant_a,
    caplog,
) -> None:
    login = api.post(
        "/api/v1/auth/login",
        {"email": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=tenant_a.host,
    )
    token = login.json()["data"]["access_token"]
    spans.clear()
    caplog.clear()

    response = api.get(
        "/api/v1/users?search=admin&page=1",
        HTTP_HOST=tenant_a.host,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 200
    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.attributes["tenant"] == tenant_a.schema
    assert server.attributes["enduser.id"] == str(tenant_a.admin().pk)
    assert server.attributes["request_id"] == response["X-Request-ID"]
    assert server.attributes["http.route"] == "api/v1/users"
    # The URL without its query string (it may hold an OIDC code).
    assert "?" not in server.attributes["http.url"] and "search" not in str(server.attributes)
    sql = [s for s in finished if s.attributes.get("db.system") == "postgresql"]
    assert sql, [s.name for s in finished]
    inside = {s.context.trace_id for s in finished}
    assert inside == {server.context.trace_id}
    assert all(s.parent is not None for s in sql)
    assert {s.attributes.get("tenant") for s in sql} == {tenant_a.schema}
    assert {s.attributes.get("request_id") for s in sql} == {response["X-Request-ID"]}
    assert any(s.attributes.get("db.system") == "redis" for s in finished)
    # The access log line leads to the trace and to the server span.
    [access] = [r for r in caplog.records if r.name == "platform.access"]
    assert access.msg["trace_id"] == hex_id(server.context.trace_id, 32)
    assert access.msg["span_id"] == hex_id(server.context.span_id, 16)


def test_log_lines_carry_no_trace_ids_outside_a_span(caplog) -> None:
    import structlog

    structlog.get_logger("tests.tracing").info("outside")
    [record] = [r for r in caplog.records if r.name == "tests.tracing"]
    assert "trace_id" not in record.msg and "span_id" not in record.msg


# ------------------------------------------------------------------ the outbox


@pytest.mark.django_db
def test_an_outbox_event_keeps_its_trace_context_and_the_relay_dispatches_it_in_that_trace(
    spans,  # noqa: F811
    tenant_a,
    django_capture_on_commit_callbacks,
) -> None:
    seen: list[trace.SpanContext] = []
    published: list[dict] = []
    queue = f"tracing-probe-{uuid.uuid4().hex[:8]}"

    @event_receiver("test.traced")
    def receiver(sender, event, **kwargs) -> None:
        seen.append(trace.get_current_span().get_span_context())
        record_schema.apply_async(args=["probe"], queue=queue)  # as consumers enqueue

    def on_publish(sender=None, headers=None, **kwargs) -> None:
        published.append(dict(headers or {}))

    before_task_publish.connect(on_publish, weak=False)

    with tenant_context(tenant_a.tenant):
        with tracer.start_as_current_span("request") as request_span:
            with django_capture_on_commit_callbacks(execute=False):
                event = event_record(type="test.traced", source="tests", data={})
        traceparent = event.trace_context["traceparent"]
        assert traceparent.split("-")[1] == hex_id(request_span.get_span_context().trace_id, 32)
        assert traceparent.split("-")[2] == hex_id(request_span.get_span_context().span_id, 16)
        event.refresh_from_db()
        assert event.trace_context["traceparent"] == traceparent  # stored with the row

        # The relay, later, in a trace of its own.
        try:
            with tracer.start_as_current_span("relay") as relay_span:
                assert event_dispatch(event) is True
        finally:
            before_task_publish.disconnect(on_publish)
            with celery_app.connection_for_write() as broker:
                broker.default_channel.queue_delete(queue)  # the probe task, never run

    [dispatch] = [s for s in spans.get_finished_spans() if s.name == "outbox.dispatch test.traced"]
    assert dispatch.context.trace_id == request_span.get_span_context().trace_id
    assert dispatch.parent is not None
    assert dispatch.parent.span_id == request_span.get_span_context().span_id
    assert [link.context.span_id for link in dispatch.links] == [
        relay_span.get_span_context().span_id
    ]
    assert dispatch.attributes["event.id"] == str(event.event_id)
    assert dispatch.attributes["tenant"] == tenant_a.schema
    # The receivers ran inside it, and the task they enqueued carries the request's trace.
    assert [c.span_id for c in seen] == [dispatch.context.span_id]
    [headers] = published
    [publish] = [s for s in spans.get_finished_spans() if s.name.startswith("apply_async/")]
    assert publish.parent is not None and publish.parent.span_id == dispatch.context.span_id
    assert headers["traceparent"].split("-")[1:3] == [
        hex_id(request_span.get_span_context().trace_id, 32),
        hex_id(publish.context.span_id, 16),
    ]


@pytest.mark.django_db
def test_an_event_recorded_outside_any_trace_keeps_no_context_and_dispatches_without_a_span(
    spans,  # noqa: F811
    tenant_a,
    django_capture_on_commit_callbacks,
) -> None:
    with tenant_context(tenant_a.tenant):
        with django_capture_on_commit_callbacks(execute=True):
            event = event_record(type="test.untraced", source="tests", data={})
        event.refresh_from_db()
    assert event.trace_context == {}
    assert event.dispatched_at is not None
    assert spans.get_finished_spans() == ()


# ------------------------------------------------------------------ providers


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, list]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    from tests.jobs.processes import free_port

    received: list = []

    class Handler:
        async def handle_RCPT(self, server: SMTP, session, envelope, address, options) -> str:
            if address.startswith("refused"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: SMTP, session, envelope) -> str:
            received.append(list(envelope.rcpt_tos))
            return "250 accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def test_a_mail_handed_to_smtp_is_an_smtp_send_span_naming_the_server_never_the_recipient(
    spans,  # noqa: F811
    smtp_sink,
    settings,
) -> None:
    port, received = smtp_sink
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    mail = build_email(to=["ada@example.test"], subject="Hi", text="Hello")
    refused = build_email(to=["refused@example.test"], subject="Hi", text="Hello")

    with tracer.start_as_current_span("task") as task:
        send_classified(mail)
        with pytest.raises(Exception, match="recipient refused"):
            send_classified(refused, get_connection())

    assert received == [["ada@example.test"]]
    sent, failed = [s for s in spans.get_finished_spans() if s.name == "smtp.send"]
    for span in (sent, failed):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == task.get_span_context().span_id
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == port
        assert span.attributes["mail.recipients"] == 1
        everything = repr((span.attributes, span.events, span.status.description))
        assert "example.test" not in everything
    assert sent.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == smtplib.SMTPRecipientsRefused.__name__


def test_another_mail_backend_is_a_mail_send_span_naming_the_backend(
    spans,  # noqa: F811
) -> None:
    with tracer.start_as_current_span("task"):
        send_classified(build_email(to=["ada@example.test"], subject="Hi", text="Hello"))
    [span] = [s for s in spans.get_finished_spans() if s.name == "mail.send"]
    assert span.attributes["mail.backend"] == "django.core.mail.backends.locmem.EmailBackend"


@pytest.mark.django_db
def test_a_client_span_outside_any_trace_is_not_recorded_inside_one_it_is(
    spans,  # noqa: F811
    traced_connection,
) -> None:
    # Beat's schedule polls, a worker's broker polls: no trace of one span each.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert spans.get_finished_spans() == ()

    with tracer.start_as_current_span("task", kind=SpanKind.CONSUMER) as task:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    [sql, consumer] = spans.get_finished_spans()
    assert sql.kind is SpanKind.CLIENT and sql.attributes["db.system"] == "postgresql"
    assert sql.parent is not None and sql.parent.span_id == task.get_span_context().span_id
    assert consumer.kind is SpanKind.CONSUMER


def test_an_outgoing_http_call_is_a_client_span_and_carries_traceparent(
    spans,  # noqa: F811
) -> None:
    from tests.notifications.conftest import HttpStub, _serve

    stub = HttpStub()
    server = _serve(stub)
    try:
        stub.always(200, {"ok": True})
        # Baggage a client sent (the default propagators would pass it on): not forwarded.
        token = otel_context.attach(baggage.set_baggage("user", "evil"))
        try:
            with tracer.start_as_current_span("task") as task:
                policy = OutboundPolicy(allow_loopback_http=True)
                with OutboundSession(outbound_policy=policy) as s:
                    response = s.post(f"{stub.url}/send/device-42?key=k3y", data={"to": "x"})
                    assert response.status_code == 200
        finally:
            otel_context.detach(token)
    finally:
        server.shutdown()
        server.server_close()

    [client] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert client.parent is not None and client.parent.span_id == task.get_span_context().span_id
    [request] = stub.requests
    _version, trace_id, parent_id, flags = request.headers["traceparent"].split("-")
    assert (trace_id, parent_id) == (
        hex_id(client.context.trace_id, 32),
        hex_id(client.context.span_id, 16),
    )
    assert int(flags, 16) & 1  # sampled
    assert "baggage" not in request.headers
    # The span names the provider's origin, not the path (a push endpoint's is the
    # device's address) nor the query (which may hold a key).
    assert client.attributes["http.url"] == stub.url
    assert "device-42" not in repr(client.attributes) and "k3y" not in repr(client.attributes)


def test_exception_messages_and_stack_traces_leave_the_process_redacted(
    spans,  # noqa: F811
) -> None:
    with tracer.start_as_current_span("task") as task:
        try:
            raise ValueError("login failed: password=hunter2 token=abcDEF1234567890abcDEF123")
        except ValueError as exc:
            task.record_exception(exc)
            task.set_status(StatusCode.ERROR, f"failed with password={'hunter2'}")

    [span] = spans.get_finished_spans()
    [event] = span.events
    assert event.attributes["exception.type"] == "ValueError"
    assert "[REDACTED]" in event.attributes["exception.message"]
    everything = repr((span.attributes, event.attributes, span.status.description))
    assert "hunter2" not in everything and "abcDEF1234567890abcDEF123" not in everything
