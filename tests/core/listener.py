"""A TCP listener on 127.0.0.1 that counts the connections it accepts and the bytes it
receives: proof that a refused outbound call never reached the address."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CountingListener:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            with conn:
                conn.settimeout(0.5)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                with self._lock:
                    self.received += data

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self.server.close()


@contextmanager
def counting_listener() -> Iterator[CountingListener]:
    listener = CountingListener()
    try:
        yield listener
    finally:
        listener.stop()
