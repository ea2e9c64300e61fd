"""Fixtures for the jobs tests: a tenant of their own, and real processes around it.

Worker and web processes write and commit for real, so the tests that use them
work in a tenant created for this package (committed) and dropped when the
package is done: nothing they leave behind can reach another test's counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django_redis import get_redis_connection

from apps.jobs.models import JobFailure, OutboxEvent
from tests.conftest import TenantFixture, committed_tenant
from tests.conftest import process_env as base_process_env
from tests.jobs import processes


@pytest.fixture(scope="package")
def jobs_tenant(django_db_setup, django_db_blocker) -> Iterator[TenantFixture]:
    with committed_tenant(django_db_blocker, "jobs", "Jobs Testing Ltd") as fixture:
        yield fixture
    with django_db_blocker.unblock():
        OutboxEvent.objects.filter(data__schema_name=fixture.schema).delete()
        JobFailure.objects.filter(tenant_schema=fixture.schema).delete()


@pytest.fixture(scope="package")
def smtp() -> Iterator[processes.SmtpSink]:
    with processes.smtp_sink_running(processes.SmtpSink()) as sink:
        yield sink


def process_env(*, broker_url: str, queue: str, smtp_port: int | None) -> dict[str, str]:
    """A jobs worker's or web process's environment: the jobs tests' settings and queue."""
    env = base_process_env(
        DJANGO_SETTINGS_MODULE="tests.jobs.worker_settings",
        CELERY_BROKER_URL=broker_url,
        JOBS_TEST_QUEUE=queue,
        # A killed worker's unacknowledged tasks come back within seconds (Redis broker).
        CELERY_VISIBILITY_TIMEOUT="4",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        # A worker killed in the middle of a sweep must not block the next one for long.
        CELERY_UNACKED_MUTEX_EXPIRE="3",
        LOG_FORMAT="console",
    )
    if smtp_port:
        env.update({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_port)})
    return env


@pytest.fixture(scope="package")
def jobs_worker(jobs_tenant, smtp, celery_worker) -> Iterator[processes.Worker]:
    """A real worker on the configured broker (Redis, or RabbitMQ in CI), on a queue of its own."""
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    env = process_env(broker_url=settings.CELERY_BROKER_URL, queue=queue, smtp_port=smtp.port)
    with celery_worker(queue=queue, env=env, concurrency=2) as worker:
        yield worker


@dataclass
class Web:
    port: int
    process: processes.Process

    def api(self, host: str) -> processes.HttpApi:
        return processes.HttpApi(self.port, host)


@pytest.fixture(scope="package")
def jobs_web(jobs_worker, log_dir) -> Iterator[Web]:
    """The web app in a process of its own, enqueuing to the jobs worker's queue."""
    port = processes.free_port()
    env = process_env(
        broker_url=settings.CELERY_BROKER_URL, queue=jobs_worker.queue, smtp_port=None
    )
    process = processes.web(name=f"web-{jobs_worker.queue}", port=port, env=env, log_dir=log_dir)
    processes.web_start(process, port)
    yield Web(port, process)
    process.stop()


@pytest.fixture
def redis_keys_cleanup() -> Iterator[list[str]]:
    """Keys a test names here are deleted afterwards (Redis is not rolled back)."""
    keys: list[str] = []
    yield keys
    if keys:
        get_redis_connection("default").delete(*keys)
