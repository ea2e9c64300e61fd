"""run.py's first hour: progress while pip installs, credentials once web answers, quiet logs."""

from __future__ import annotations

import http.server
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import run
from platform_site.local_logging import RoutineTasksQuiet

# Not for these tests' own sake: the suite's autouse Redis clean-up may read the database
# when this module's first test opens the session's first Redis connection.
pytestmark = pytest.mark.django_db

PIP_OUTPUT = """\
Obtaining file:///work/platform
Collecting django==5.2.19
  Downloading Django-5.2.19-py3-none-any.whl (8.3 MB)
Collecting psycopg==3.2.9
Requirement already satisfied: pip in ./.venv/lib/python3.11/site-packages
Building wheels for collected packages: platform-enterprise
Installing collected packages: psycopg, django, platform-enterprise
Successfully installed django-5.2.19 psycopg-3.2.9 platform-enterprise-0.1
"""


def test_pip_output_becomes_a_line_per_phase() -> None:
    progress = run.InstallProgress()

    said = [m for line in PIP_OUTPUT.splitlines() if (m := progress.line(line))]

    assert said[0] == "building wheels (4 packages found)"
    assert said[1] == "installing 3 packages"
    assert said[2].startswith("installed in ")
    assert len(said) == 3


def test_a_long_silent_phase_still_says_something(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(run.time, "monotonic", lambda: clock[0])
    progress = run.InstallProgress()
    progress.line("Collecting django==5.2.19")

    assert progress.tick() is None
    clock[0] += run.InstallProgress.HEARTBEAT + 1
    assert progress.tick() == "  still collecting (11 s, 1 packages found)"
    assert progress.tick() is None  # not again until another heartbeat has passed


def test_pip_failing_shows_its_output_and_reports_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = [
        sys.executable,
        "-c",
        "print('Collecting nothing'); print('ERROR: no such'); exit(1)",
    ]

    assert run.pip_install_with_progress(command) is False

    assert "ERROR: no such" in capsys.readouterr().err


class FakeWeb:
    """/health/live answers at once; /health/ready reports the worker unavailable (503) for
    the first `worker_late` probes, as while the worker starts, then ok."""

    def __init__(self, worker_late: int) -> None:
        self.worker_late = worker_late
        self.ready_probes = 0


@pytest.fixture
def fake_web() -> Iterator[tuple[str, FakeWeb]]:
    state = FakeWeb(worker_late=2)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health/live":
                self._answer(200, {"status": "ok"})
            elif self.path == "/health/ready":
                state.ready_probes += 1
                worker = "ok" if state.ready_probes > state.worker_late else "unavailable"
                status = 200 if worker == "ok" else 503
                self._answer(status, {"checks": {"worker": {"status": worker}}})
            else:
                self._answer(404, {})

        def _answer(self, status: int, body: dict[str, object]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def honcho_stand_in() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_credentials_are_printed_once_web_answers_and_a_worker_consumes(
    fake_web: tuple[str, FakeWeb],
    honcho_stand_in: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run.time, "sleep", lambda seconds: None)
    base_url, state = fake_web

    run._tell_when_web_answers(honcho_stand_in, base_url, "  password: s3cret\n")

    assert state.ready_probes == 3  # waited through two "worker unavailable" answers
    out = capsys.readouterr().out
    assert "password: s3cret" in out
    assert out.rstrip().splitlines()[-1].startswith("[run] ready; Ctrl-C stops everything.")


def test_a_worker_that_never_comes_does_not_hold_the_credentials_back(
    fake_web: tuple[str, FakeWeb],
    honcho_stand_in: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    base_url, state = fake_web
    state.worker_late = 10**6

    run._tell_when_web_answers(honcho_stand_in, base_url, "  password: s3cret\n", worker_limit=1)

    assert "password: s3cret" in capsys.readouterr().out


def test_nothing_is_printed_when_web_never_answers_and_the_processes_stop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    web = subprocess.Popen([sys.executable, "-c", "pass"])
    web.wait()

    run._tell_when_web_answers(web, "http://127.0.0.1:9", "  password: s3cret\n")

    assert "s3cret" not in capsys.readouterr().out


def _record(name: str, message: str, args: tuple[object, ...], level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_local_logs_drop_the_routine_tasks_lines_only() -> None:
    quiet = RoutineTasksQuiet()
    relay = ("core.outbox_relay", "9b1")

    assert not quiet.filter(_record("celery.worker.strategy", "Task %s[%s] received", relay, 20))
    sent = ("core.outbox_relay", "core.outbox_relay")
    assert not quiet.filter(_record("celery.beat", "Scheduler: Sending due task %s (%s)", sent, 20))
    assert quiet.filter(_record("celery.app.trace", "Task %s[%s] failed", relay, 40))
    welcome = ("notifications.welcome_send", "7c2")
    assert quiet.filter(_record("celery.worker.strategy", "Task %s[%s] received", welcome, 20))
