"""One trace across processes: a request that creates a user, the outbox, the Celery task in
a real worker and the SMTP send of the welcome mail. And gunicorn starts the SDK in each
worker after the fork, never in its master.

This process records its spans in memory (tests/core/tracing_support.py); the worker and
gunicorn export theirs with the real OTLP exporter, configured by the standard variables
alone, to a collector the test runs. The request's writes are committed (the worker must
see them): it is served in a thread of its own, whose database connection is not the
test's (rolled back) one, in a tenant of this module's own, dropped at the end.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections
from opentelemetry.trace import SpanKind
from rest_framework.test import APIClient

from tests.conftest import ADMIN_PASSWORD, TenantFixture, committed_tenant, process_env
from tests.core.tracing_support import (  # noqa: F401  (fixtures)
    CollectedSpan,
    OtlpCollector,
    hex_id,
    otlp_collector,
    spans,
)
from tests.jobs import processes

pytestmark = [pytest.mark.worker, pytest.mark.django_db]

OTLP_SPAN_KIND_CONSUMER = 5


@pytest.fixture(scope="module")
def traced_tenant(django_db_setup, django_db_blocker) -> Iterator[TenantFixture]:
    with committed_tenant(django_db_blocker, "trace", "Tracing Ltd") as fixture:
        yield fixture


@pytest.fixture(scope="module")
def smtp() -> Iterator[processes.SmtpSink]:
    with processes.smtp_sink_running(processes.SmtpSink()) as sink:
        yield sink


def otel_env(collector: OtlpCollector, service: str) -> dict[str, str]:
    """Tracing on, by the standard variables only: OTLP to the test's collector, exported
    within 50 ms of a span's end."""
    return {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


def committed(work: Callable[[], Any]) -> Any:
    """Run `work` in a thread of its own: its database connection (opened now, through the
    instrumented psycopg) commits, unlike the test's."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert outcome, "the request did not complete"
    return outcome[0]


def _descends(span: CollectedSpan, ancestor_id: str, by_id: dict[str, CollectedSpan]) -> bool:
    while span.parent_span_id:
        if span.parent_span_id == ancestor_id:
            return True
        parent = by_id.get(span.parent_span_id)
        if parent is None:
            return False
        span = parent
    return False


def test_a_request_creating_a_user_is_one_trace_through_the_outbox_the_worker_and_smtp(
    traced_tenant,
    smtp,
    otlp_collector,  # noqa: F811
    celery_worker,
    spans,  # noqa: F811
    client_ip,
    caplog,
) -> None:
    env = process_env(
        DJANGO_SETTINGS_MODULE="tests.jobs.worker_settings",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        **otel_env(otlp_collector, "platform-worker"),
    )
    email = f"new-{uuid.uuid4().hex[:8]}@tracing.test"
    # The welcome task goes to the default queue, where this process sends it.
    api = APIClient(REMOTE_ADDR=client_ip, raise_request_exception=False)
    with celery_worker(env=env, also_queues=["celery"]) as worker:
        login = committed(
            lambda: api.post(
                "/api/v1/auth/login",
                {"email": traced_tenant.admin_email, "password": ADMIN_PASSWORD},
                format="json",
                HTTP_HOST=traced_tenant.host,
            )
        )
        token = login.json()["data"]["access_token"]
        spans.clear()
        caplog.clear()

        response = committed(
            lambda: api.post(
                "/api/v1/users",
                {
                    "email": email,
                    "username": email.split("@")[0],
                    "password": "a-good-long-passphrase",
                    "password_confirm": "a-good-long-passphrase",
                    "full_name": "New Person",
                },
                format="json",
                HTTP_HOST=traced_tenant.host,
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        )
        assert response.status_code == 201, response.content
        processes.wait_for(lambda: smtp.to(email), timeout=30, what="the welcome e-mail")

        # This process: the server span, its SQL, the outbox dispatch, the task's publish.
        finished = spans.get_finished_spans()
        [server] = [s for s in finished if s.kind is SpanKind.SERVER]
        trace_id = server.context.trace_id
        assert {s.context.trace_id for s in finished} == {trace_id}
        assert server.attributes["tenant"] == traced_tenant.schema
        assert server.attributes["enduser.id"] == str(
            response.wsgi_request.user.pk  # the admin who made the request
        )
        assert server.attributes["request_id"] == response["X-Request-ID"]
        sql = [s for s in finished if s.attributes.get("db.system") == "postgresql"]
        assert any("INSERT" in str(s.attributes.get("db.statement")) for s in sql)
        [dispatch] = [s for s in finished if s.name == "outbox.dispatch user.created"]
        [publish] = [s for s in finished if s.name == "apply_async/notifications.welcome_send"]
        assert publish.parent is not None and publish.parent.span_id == dispatch.context.span_id

        # The worker: the task continues the request's trace, and sends the mail inside it.
        trace_hex = hex_id(trace_id, 32)

        def worker_spans(collected: list[CollectedSpan]) -> list[CollectedSpan] | None:
            mine = [s for s in collected if s.trace_id == trace_hex]
            return mine if any(s.name == "smtp.send" for s in mine) else None

        traced = otlp_collector.wait(worker_spans, what="the worker's spans of the request")
        by_id = {s.span_id: s for s in traced}
        [run] = [s for s in traced if s.name == "run/notifications.welcome_send"]
        assert run.parent_span_id == hex_id(publish.context.span_id, 16)
        assert run.kind == OTLP_SPAN_KIND_CONSUMER
        assert run.attributes["tenant"] == traced_tenant.schema
        [send] = [s for s in traced if s.name == "smtp.send"]
        assert _descends(send, run.span_id, by_id)
        assert send.attributes["server.address"] == "127.0.0.1"
        assert send.attributes["server.port"] == smtp.port
        assert email not in repr(send.attributes)
        assert any(
            s.attributes.get("db.system") == "postgresql" and _descends(s, run.span_id, by_id)
            for s in traced
        )
        # Started in the pool process, after the fork: not in the worker's main process.
        assert run.resource["service.name"] == "platform-worker"
        assert worker.process.process is not None
        assert run.resource["process.pid"] != worker.process.process.pid

    # The request's log lines lead to its trace.
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    [access] = [line for line in logged if line.get("event") == "request"]
    assert access["trace_id"] == trace_hex
    assert access["span_id"] == hex_id(server.context.span_id, 16)


def test_gunicorn_starts_the_sdk_in_each_worker_after_the_fork_never_in_the_master(
    otlp_collector,  # noqa: F811
    log_dir,
) -> None:
    port = processes.free_port()
    env = process_env(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        **otel_env(otlp_collector, "platform-web"),
    )
    web = processes.Process(
        f"gunicorn-{port}",
        [sys.executable, "-m", "gunicorn", "platform_site.wsgi:application", "-c",
         "gunicorn.conf.py"],
        env,
        log_dir,
    )  # fmt: skip
    try:
        processes.web_start(web, port)
        assert web.process is not None
        master = web.process.pid
        for _ in range(6):
            probe = urllib.request.Request(
                f"http://127.0.0.1:{port}/health/live", headers={"Host": "localhost"}
            )
            urllib.request.urlopen(probe, timeout=5).close()  # noqa: S310 (our own server)

        def served(collected: list[CollectedSpan]) -> list[CollectedSpan] | None:
            mine = [
                s
                for s in collected
                if s.resource.get("service.name") == "platform-web"
                and s.attributes.get("http.target") == "/health/live"
            ]
            return mine if len(mine) >= 6 else None

        server_spans = otlp_collector.wait(served, what="gunicorn's server spans")
    finally:
        web.stop()
    pids = {s.resource["process.pid"] for s in server_spans}
    assert master not in pids
    assert pids  # one per worker that served


def test_the_console_exporter_prints_each_span_of_runserver_as_one_json_line(log_dir) -> None:
    """`OTEL_TRACES_EXPORTER=console python3 run.py`: no collector, spans among the logs."""
    port = processes.free_port()
    web = processes.web(
        name=f"web-console-{port}",
        port=port,
        env=process_env(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="platform-web"),
        log_dir=log_dir,
    )
    try:
        processes.web_start(web, port)
        probe = urllib.request.Request(
            f"http://127.0.0.1:{port}/health/live",
            headers={"Host": "localhost", "X-Request-ID": "console-probe"},
        )
        urllib.request.urlopen(probe, timeout=5).close()  # noqa: S310 (our own server)

        def printed() -> list[dict[str, Any]]:
            lines = [line for line in web.log().splitlines() if line.startswith('{"name"')]
            found = [json.loads(line) for line in lines]
            return [s for s in found if s["attributes"].get("request_id") == "console-probe"]

        [span] = processes.wait_for(printed, timeout=10, what="the printed server span")
    finally:
        web.stop()
    assert span["kind"] == "SpanKind.SERVER"
    assert span["resource"]["attributes"]["service.name"] == "platform-web"
    assert len(span["context"]["trace_id"]) == 34  # 0x + 32 hex digits
