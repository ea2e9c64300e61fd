"""A small HTTP load generator: one new connection per request, like a client of gunicorn's sync worker.

gunicorn's sync worker answers one request per connection and closes it (no
keep-alive), so every request here is connect, send, read until the server
closes, close. Each generator process runs a `selectors` loop over a fixed
number of concurrent connections with non-blocking sockets and precomputed
request bytes, which keeps the generator's own CPU per request small (it is
measured and reported, because on a small machine the generator shares the
cores with the server it loads).

Used by `foundation.py`; also runnable on its own:

    .venv/bin/python -m bench.loadgen http://127.0.0.1:8000/api/v1/info --host acme.localhost -d 5
    .venv/bin/python -m bench.loadgen --self-test   # capacity against a trivial server
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_READ_SIZE = 65536


@dataclass
class LoadResult:
    """What a load run achieved; `rps` counts 200 responses only."""

    duration: float
    ok: int = 0
    non_200: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    generator_cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    processes: int = 1
    connections: int = 1
    tool: str = "bench.loadgen"

    @property
    def rps(self) -> float:
        return self.ok / self.duration if self.duration > 0 else 0.0

    @property
    def generator_cpu_us_per_request(self) -> float:
        done = self.ok + self.non_200
        return self.generator_cpu_seconds / done * 1e6 if done else 0.0

    def latency_ms(self, quantile: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "ok": self.ok,
            "non_200": self.non_200,
            "errors": self.errors,
            "statuses": self.statuses,
            "duration_s": round(self.duration, 3),
            "latency_p50_ms": round(self.latency_ms(0.5), 2),
            "latency_p99_ms": round(self.latency_ms(0.99), 2),
            "generator_cpu_us_per_request": round(self.generator_cpu_us_per_request, 1),
            "processes": self.processes,
            "connections": self.connections,
            "tool": self.tool,
        }


Headers = tuple[tuple[str, str], ...]


def build_request(
    path: str,
    host_header: str,
    *,
    method: str = "GET",
    headers: Headers = (),
    body: bytes = b"",
) -> bytes:
    """The request bytes, built once: `GET path` by default; extra headers (e.g.
    `Authorization`) and a body (sent with its Content-Length) when given."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    if body or method not in ("GET", "HEAD"):
        extra += f"Content-Length: {len(body)}\r\n"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: bench-loadgen\r\n"
        f"Accept: application/json\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Conn:
    __slots__ = ("buffer", "sock", "started")

    def __init__(self, sock: socket.socket, started: float) -> None:
        self.sock = sock
        self.started = started
        self.buffer = b""


def _worker(
    address: tuple[str, int],
    requests: list[bytes],
    connections: int,
    start_at: float,
    duration: float,
    keep_latencies: bool,
    results: Any,
) -> None:
    """One generator process: `connections` requests in flight until the deadline."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    selector = selectors.DefaultSelector()
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    errors = 0
    perf = time.perf_counter
    # Each new connection sends the next request of the list, in turn (one request when
    # every request is the same; several spread the load over hosts or tokens).
    turn = 0
    count = len(requests)

    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    cpu_started = time.process_time()
    started = perf()
    deadline = started + duration

    def open_one() -> None:
        nonlocal errors
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            errors += 1
            sock.close()
            return
        selector.register(sock, selectors.EVENT_WRITE, _Conn(sock, perf()))

    for _ in range(connections):
        open_one()

    while selector.get_map():
        now = perf()
        if now >= deadline:
            break
        for key, events in selector.select(timeout=deadline - now):
            conn: _Conn = key.data
            sock = conn.sock
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(requests[turn])
                    turn = turn + 1 if turn + 1 < count else 0
                except OSError:
                    errors += 1
                    selector.unregister(sock)
                    sock.close()
                    open_one()
                    continue
                selector.modify(sock, selectors.EVENT_READ, conn)
                continue
            try:
                chunk = sock.recv(_READ_SIZE)
            except OSError:
                chunk = b""
                if not conn.buffer:
                    errors += 1
                    selector.unregister(sock)
                    sock.close()
                    open_one()
                    continue
            if chunk:
                conn.buffer += chunk
                continue
            # The server closed the connection: the response is complete.
            selector.unregister(sock)
            sock.close()
            if conn.buffer.startswith(b"HTTP/1."):
                statuses[conn.buffer[9:12].decode("ascii", "replace")] += 1
                if keep_latencies:
                    latencies.append((perf() - conn.started) * 1000)
            else:
                errors += 1
            open_one()

    elapsed = perf() - started
    cpu = time.process_time() - cpu_started
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    results.put(
        {
            "elapsed": elapsed,
            "statuses": dict(statuses),
            "errors": errors,
            "cpu": cpu,
            "latencies": latencies,
        }
    )


def run(
    url_host: str,
    port: int,
    path: str,
    host_header: str,
    *,
    duration: float,
    connections: int = 8,
    processes: int = 1,
    keep_latencies: bool = True,
    method: str = "GET",
    headers: Headers = (),
    body: bytes = b"",
    variants: list[tuple[str, Headers]] | None = None,
) -> LoadResult:
    """Load http://url_host:port/path for `duration` seconds; wrk when installed, else Python.

    Every request is the same `method` with the same extra `headers` and `body`; or, with
    `variants` (pairs of Host header and extra headers), each new connection takes the next
    pair in turn (always the Python generator: wrk sends one request only)."""
    if shutil.which("wrk") and not variants:
        return _run_wrk(
            url_host, port, path, host_header, duration, connections, processes,
            method=method, headers=headers, body=body,
        )  # fmt: skip
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 0.3  # once every process has started
    requests = [
        build_request(path, host, method=method, headers=extra, body=body)
        for host, extra in (variants or [(host_header, headers)])
    ]
    workers = [
        context.Process(
            target=_worker,
            args=(
                (url_host, port),
                requests[index::processes] or requests,
                max(1, connections // processes),
                start_at,
                duration,
                keep_latencies,
                queue,
            ),
            daemon=True,
        )
        for index in range(processes)
    ]
    for process in workers:
        process.start()
    parts = [queue.get(timeout=duration + 30) for _ in workers]
    for process in workers:
        process.join(timeout=10)
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    result = LoadResult(
        duration=statistics.mean(part["elapsed"] for part in parts),
        ok=statuses.get("200", 0),
        non_200=sum(count for status, count in statuses.items() if status != "200"),
        errors=sum(part["errors"] for part in parts),
        statuses=dict(statuses),
        generator_cpu_seconds=sum(part["cpu"] for part in parts),
        latencies_ms=[latency for part in parts for latency in part["latencies"]],
        processes=processes,
        connections=max(1, connections // processes) * processes,
    )
    return result


def _run_wrk(
    url_host: str,
    port: int,
    path: str,
    host_header: str,
    duration: float,
    connections: int,
    threads: int,
    *,
    method: str = "GET",
    headers: Headers = (),
    body: bytes = b"",
) -> LoadResult:
    wrk = shutil.which("wrk") or "wrk"
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "-H",
        f"Host: {host_header}",
        "-H",
        "Connection: close",
    ]
    for name, value in headers:
        command += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory() as folder:
        if method != "GET" or body:
            script = Path(folder) / "request.lua"
            script.write_text(
                f"wrk.method = {json.dumps(method)}\nwrk.body = {json.dumps(body.decode())}\n"
            )
            command += ["-s", str(script)]
        command.append(f"http://{url_host}:{port}{path}")
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    total = 0
    non_2xx = 0
    errors = 0
    elapsed = duration
    for line in output.splitlines():
        words = line.split()
        if "requests in" in line:
            total = int(words[0])
            elapsed = float(words[3].rstrip("s,"))
        elif line.strip().startswith("Non-2xx"):
            non_2xx = int(words[-1])
        elif line.strip().startswith("Socket errors"):
            errors = sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    return LoadResult(
        duration=elapsed,
        ok=total - non_2xx,
        non_200=non_2xx,
        errors=errors,
        statuses={"2xx": total - non_2xx, "other": non_2xx},
        processes=threads,
        connections=connections,
        tool="wrk (threads instead of processes; generator CPU not measured)",
    )


# ------------------------------------------------------------------ self-test


_TRIVIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n{}"
)


def _trivial_server(sock: socket.socket) -> None:
    """Answers every connection at once with a fixed response and closes it."""
    selector = selectors.DefaultSelector()
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ, None)
    while True:
        for key, _events in selector.select():
            if key.data is None:
                for _ in range(64):
                    try:
                        client, _addr = sock.accept()
                    except BlockingIOError:
                        break
                    client.setblocking(False)
                    selector.register(client, selectors.EVENT_READ, True)
                continue
            client = key.fileobj  # type: ignore[assignment]
            try:
                data = client.recv(_READ_SIZE)
                if data:
                    client.send(_TRIVIAL_RESPONSE)
            except OSError:
                pass
            selector.unregister(client)
            client.close()


def self_test(
    duration: float = 2.0, connections: int = 8, processes: int = 1
) -> tuple[LoadResult, str]:
    """The generator against a trivial one-process server on this machine: its ceiling here."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(
        target=_trivial_server, args=(listener,), daemon=True
    )
    server.start()
    listener.close()
    try:
        result = run(
            "127.0.0.1",
            port,
            "/",
            "localhost",
            duration=duration,
            connections=connections,
            processes=processes,
        )
    finally:
        server.terminate()
        server.join(timeout=5)
    return result, "a one-process Python selectors server that answers at once"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000/api/v1/info")
    parser.add_argument("--host", help="Host header (default: the URL's host)")
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("-c", "--connections", type=int, default=8)
    parser.add_argument("-p", "--processes", type=int, default=1)
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("-X", "--method", default="GET")
    parser.add_argument("--data", default="", help="request body (sent with its length)")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        result, _ = self_test(args.duration, args.connections, args.processes)
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(args.url)
        result = run(
            parts.hostname or "127.0.0.1",
            parts.port or 80,
            parts.path or "/",
            args.host or parts.netloc,
            duration=args.duration,
            connections=args.connections,
            processes=args.processes,
            method=args.method,
            headers=tuple(
                (name.strip(), value.strip())
                for name, _, value in (header.partition(":") for header in args.header)
            ),
            body=args.data.encode(),
        )
    json.dump(result.summary(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
