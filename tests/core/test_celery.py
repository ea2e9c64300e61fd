"""Tenant-aware Celery with a real worker process and the configured broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context, tenant_context

from apps.core.models import OutboxEvent
from apps.core.tasks import TenantContextMissing
from platform_site.celery import app
from tests.worker_tasks import record_schema

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """The test database (not the one in DATABASE_URL), as a URL for the worker process."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@{port}/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def worker_queue(session_tenants, django_db_blocker) -> Iterator[str]:
    """A real `celery worker` on a queue of its own, reading the test database."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platform_site.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    log = (
        (ROOT / ".local" / f"worker-{queue}.log").open("wb")
        if (ROOT / ".local").is_dir()
        else subprocess.DEVNULL
    )
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "-Q", queue,
         "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
         "-n", f"{queue}@%h"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test worker did not start (exit code {process.poll()})")
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.worker
@pytest.mark.django_db
def test_worker_runs_a_tenant_task_in_the_schema_it_was_sent_from(
    worker_queue, tenant_a, tenant_b
) -> None:
    marker = uuid.uuid4().hex
    with tenant_context(tenant_a.tenant):
        result = record_schema.apply_async(args=[marker], queue=worker_queue)
    assert result.get(timeout=30) == tenant_a.schema

    with tenant_context(tenant_a.tenant):
        rows = list(OutboxEvent.objects.filter(event_type="test.worker_probe", data__marker=marker))
    assert [row.data["schema"] for row in rows] == [tenant_a.schema]
    for other in (tenant_b.tenant,):
        with tenant_context(other):
            assert not OutboxEvent.objects.filter(data__marker=marker).exists()
    with schema_context("public"):
        assert not OutboxEvent.objects.filter(data__marker=marker).exists()


@pytest.mark.worker
@pytest.mark.django_db
def test_two_tenants_tasks_each_run_in_their_own_schema(worker_queue, tenant_a, tenant_b) -> None:
    results: dict[str, list] = {}
    for fixture in (tenant_a, tenant_b, tenant_a):
        with tenant_context(fixture.tenant):
            results.setdefault(fixture.schema, []).append(
                record_schema.apply_async(args=[uuid.uuid4().hex], queue=worker_queue)
            )
    for schema, sent in results.items():
        assert [r.get(timeout=30) for r in sent] == [schema] * len(sent)


@pytest.mark.django_db
def test_sending_a_tenant_task_without_a_tenant_fails_at_once() -> None:
    with schema_context("public"), pytest.raises(TenantContextMissing):
        record_schema.delay("never-sent")


@pytest.mark.worker
@pytest.mark.django_db
def test_a_tenant_task_arriving_without_a_tenant_fails_in_the_worker(worker_queue) -> None:
    marker = uuid.uuid4().hex
    # A message that bypassed the guard (sent by name, from a producer that set no tenant).
    result = app.send_task(
        "tests.record_schema", args=[marker], queue=worker_queue, headers={"_schema_name": "public"}
    )
    with pytest.raises(Exception, match="without a tenant"):
        result.get(timeout=30)
    assert result.state == "FAILURE"
    with schema_context("public"):
        assert not OutboxEvent.objects.filter(data__marker=marker).exists()


def test_reliability_settings() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
