"""Tenant-aware Celery with a real worker process and the configured broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django_tenants.utils import schema_context, tenant_context

from apps.jobs.bases import TenantContextMissing
from apps.jobs.models import OutboxEvent
from platform_site.celery import app
from tests.worker_tasks import record_schema


@pytest.fixture(scope="session")
def worker_queue(session_tenants, celery_worker) -> Iterator[str]:
    """A real `celery worker` on a queue of its own, reading the test database."""
    with celery_worker() as worker:
        yield worker.queue


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
