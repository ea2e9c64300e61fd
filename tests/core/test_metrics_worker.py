"""A real Celery worker's metrics: its pool processes count task runs and durations, its
main process serves them on METRICS_WORKER_PORT under the same access rule as /metrics."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest
from django_tenants.utils import tenant_context

from platform_site.celery import app
from tests.core.metrics_samples import Samples, parse, value
from tests.jobs.processes import free_port, wait_for
from tests.worker_tasks import record_schema

TOKEN = "worker-metrics-token-for-tests"


def _get(port: int, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def _samples(port: int) -> Samples:
    status, body = _get(port, TOKEN)
    assert status == 200, body
    return parse(body.decode())


@pytest.mark.worker
@pytest.mark.django_db
def test_a_worker_counts_its_tasks_and_serves_them_on_its_port(
    session_tenants, tenant_a, celery_worker
) -> None:
    port = free_port()
    env = {"METRICS_WORKER_PORT": str(port), "METRICS_TOKEN": TOKEN}
    env["PROMETHEUS_MULTIPROC_DIR"] = ""  # its own temporary directory, whatever ours is
    # Two pool processes: the counts of both reach the one port.
    with celery_worker(env=env, concurrency=2) as worker:
        wait_for(lambda: _get(port, None)[0] == 401, timeout=30, what="the worker's port")
        assert _get(port, "wrong")[0] == 401

        # Given: three runs that succeed and one that fails, by a real worker.
        with tenant_context(tenant_a.tenant):
            ok = [
                record_schema.apply_async(args=[uuid.uuid4().hex], queue=worker.queue)
                for _ in range(3)
            ]
        failing = app.send_task(
            "tests.record_schema", args=["x"], queue=worker.queue,
            headers={"_schema_name": "public"},
        )  # fmt: skip
        assert [r.get(timeout=30) for r in ok] == [tenant_a.schema] * 3
        with pytest.raises(Exception, match="without a tenant"):
            failing.get(timeout=30)

        # Then: the worker's metrics say so, exactly (postrun follows the stored result).
        def runs(outcome: str) -> float:
            return value(
                _samples(port),
                "celery_task_runs_total",
                task="tests.record_schema",
                outcome=outcome,
            )

        wait_for(lambda: runs("success") == 3 and runs("failure") == 1, timeout=10, what="counts")
        samples = _samples(port)
        assert value(samples, "celery_task_duration_seconds_count", task="tests.record_schema") == 4
        assert value(samples, "celery_task_duration_seconds_sum", task="tests.record_schema") > 0
        # A worker serves no request metrics and no scrape-time gauges (the web does).
        assert not any(name.startswith(("http_", "outbox_")) for name, _ in samples)
