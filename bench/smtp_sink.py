"""An SMTP server that accepts everything and says when, for the jobs benchmark.

    python -m bench.smtp_sink PORT

Runs in a process of its own, as a mail server would, so that the measuring
process (which creates users, hashing their passwords) and the server never
take turns on one interpreter lock. For every message accepted it prints one
line: the moment (time.perf_counter, CLOCK_MONOTONIC: the same clock in every
process of the machine) and the recipients.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        sys.stdout.write(f"{now!r} {' '.join(envelope.rcpt_tos)}\n")
        sys.stdout.flush()
        return "250 Message accepted for delivery"


def main() -> None:
    port = int(sys.argv[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
