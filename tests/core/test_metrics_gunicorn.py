"""The web's metrics under gunicorn as the image runs it (gunicorn.conf.py, the app preloaded
in the master): every worker process's counts reach /metrics, also those of workers that
have exited, and a directory left by an earlier run starts empty."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import process_env
from tests.core.metrics_samples import parse, value
from tests.jobs.processes import Process, free_port, wait_for


def _get(port: int, path: str, host: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a local port)
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except OSError:
        return 0, b""


@pytest.mark.worker
@pytest.mark.django_db
def test_gunicorn_workers_add_up_and_exited_workers_still_count(
    session_tenants, tenant_a, tmp_path: Path, log_dir: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    stale = directory / "counter_1.db"
    stale.write_bytes(b"left by an earlier run")
    port = free_port()
    env = process_env(PROMETHEUS_MULTIPROC_DIR=str(directory), METRICS_TENANT_LABEL="true")
    # One worker at a time, replaced after every 3 requests: 10 requests are served by
    # at least 4 processes, 3 of them gone by the time of the scrape.
    web = Process(
        "gunicorn-metrics",
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--max-requests", "3",
         "--max-requests-jitter", "0", "platform_site.wsgi:application"],
        env,
        log_dir,
    )  # fmt: skip
    web.start()
    try:
        wait_for(
            lambda: _get(port, "/health/live", "localhost")[0] == 200,
            timeout=60, interval=0.2, what="gunicorn",
        )  # fmt: skip
        assert not stale.exists()  # emptied when the master started

        for _ in range(10):
            assert _get(port, "/api/v1/info", tenant_a.host)[0] == 200
        status, body = _get(port, "/metrics", "localhost")
        assert status == 200, body
        samples = parse(body.decode())
    finally:
        web.stop()

    pids = {p.name.rsplit("_", 1)[1].removesuffix(".db") for p in directory.glob("counter_*.db")}
    assert len(pids) >= 4, sorted(pids)
    labels = {"route": "api/v1/info", "method": "GET", "status": "200", "tenant": tenant_a.schema}
    assert value(samples, "http_requests_total", **labels) == 10
    # The readiness probe of the start, once per poll, is counted too; its exact number is
    # not known, but it is at least the one that answered.
    assert (
        value(
            samples,
            "http_requests_total",
            route="health/live",
            method="GET",
            status="200",
            tenant="none",
        )
        >= 1
    )


@pytest.mark.django_db
def test_loading_the_app_does_not_import_prometheus_client() -> None:
    """With gunicorn's preload the master loads the app before `on_starting` makes the
    multiprocess directory; prometheus_client picks its mode when imported, so loading the
    app must not import it (the first request in a worker does)."""
    import subprocess

    env = process_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    code = (
        "import sys\n"
        "from platform_site.wsgi import application\n"
        "print('loaded', 'prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run(  # noqa: S603 (this Python, fixed code)
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("loaded False"), result.stdout[-500:]
