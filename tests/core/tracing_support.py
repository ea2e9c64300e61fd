"""What the tracing tests share: this process's SDK with an in-memory exporter, the
instrumentations switched on around a test, and an OTLP/HTTP collector that the
processes the tests start (a worker, gunicorn) export their spans to."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core.tracing import tracing_instrument, tracing_start, tracing_uninstrument
from tests.jobs.processes import wait_for

_exporter: list[InMemorySpanExporter] = []


def memory_exporter() -> InMemorySpanExporter:
    """The SDK of this (test) process, started once, exporting each span as it ends to
    memory. The global tracer provider can be set only once per process."""
    if not _exporter:
        exporter = InMemorySpanExporter()
        tracing_start(exporters=[], synchronous=[exporter])
        _exporter.append(exporter)
    return _exporter[0]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this process records during the test (the SDK on, the instrumentations on)."""
    exporter = memory_exporter()
    tracing_instrument()
    exporter.clear()
    try:
        yield exporter
    finally:
        tracing_uninstrument()
        exporter.clear()


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


# ------------------------------------------------------------------ OTLP from other processes


@dataclass(frozen=True)
class CollectedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class OtlpCollector:
    """An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1: what the real exporter sends."""

    spans: list[CollectedSpan] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        CollectedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            resource=resource,
                            status_code=span.status.code,
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def wait(
        self, check: Callable[[list[CollectedSpan]], Any], *, what: str, timeout: float = 30
    ) -> Any:
        def look() -> Any:
            with self._lock:
                return check(list(self.spans))

        return wait_for(look, timeout=timeout, what=what)


@pytest.fixture(scope="session")
def otlp_collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                collector.receive(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield collector
    server.shutdown()
    server.server_close()
