"""Fixtures shared by the notifications tests (add yours; keep the others)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings as django_settings
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context

from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401
from tests.rbac.conftest import grant, owner_token, person  # noqa: F401

# ------------------------------------------------------------------ delivery and providers


@pytest.fixture(autouse=True)
def _notification_breakers_closed() -> Iterator[None]:
    # Breaker state lives in Redis, which no test transaction rolls back.
    def forget() -> None:
        from apps.notifications.breaker import _breaker

        redis = get_redis_connection("default")
        prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
        keys = list(redis.scan_iter(match=f"{prefix}:notifications:breaker:*", count=1000))
        if keys:
            redis.delete(*keys)
        _breaker.cache_clear()

    forget()
    yield
    forget()


@pytest.fixture
def in_tenant_a(tenant_a) -> Iterator[Any]:
    """The test body runs in tenant A's schema (the connection's tenant is set)."""
    with tenant_context(tenant_a.tenant):
        yield tenant_a


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def basic_auth(self) -> tuple[str, str]:
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        assert scheme.lower() == "basic"
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user, password


@dataclass
class HttpStub:
    """A real HTTP server on 127.0.0.1 answering with the queued responses (then `default`)."""

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    responses: list[tuple[int, Any]] = field(default_factory=list)
    default: tuple[int, Any] = (200, {})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, body: Any = None, *, times: int = 1) -> None:
        with self.lock:
            self.responses.extend([(status, body if body is not None else {})] * times)

    def always(self, status: int, body: Any = None) -> None:
        with self.lock:
            self.responses.clear()
            self.default = (status, body if body is not None else {})

    def _next(self, request: RecordedRequest) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
            return self.responses.pop(0) if self.responses else self.default


def _serve(stub: HttpStub) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length),
            )
            status, body = stub._next(request)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def http_stub() -> Iterator[Callable[[], HttpStub]]:
    """http_stub(): a fresh local HTTP server per call, stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> HttpStub:
        stub = HttpStub()
        servers.append(_serve(stub))
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def session_http_stub() -> Iterator[HttpStub]:
    """One local HTTP server for the whole session (a worker process is pointed at it)."""
    stub = HttpStub()
    server = _serve(stub)
    yield stub
    server.shutdown()
    server.server_close()


@dataclass
class SmtpInbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd wants a known port: ask the OS for a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = SmtpInbox(host="127.0.0.1", port=port)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            inbox.messages.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
