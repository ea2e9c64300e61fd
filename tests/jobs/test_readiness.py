"""Readiness asks the real workers: a worker consuming the default queue is `ok`, one on
other queues only does not count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import current_app
from rest_framework.test import APIClient

from apps.core import health

pytestmark = [pytest.mark.worker, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _no_remembered_worker_answer() -> Iterator[None]:
    health.worker_status_forget()
    yield
    health.worker_status_forget()


def _worker_check(settings) -> dict:
    settings.READINESS_WORKER_TIMEOUT = 2  # a real worker answers in milliseconds
    response = APIClient().get("/health/ready", HTTP_HOST="localhost")
    assert response.status_code == 200
    return response.json()["checks"]["worker"]


def test_a_worker_consuming_the_default_queue_is_ok(jobs_worker, monkeypatch, settings) -> None:
    # This process's default queue, for the test: the one the jobs worker consumes.
    monkeypatch.setitem(current_app.conf, "task_default_queue", jobs_worker.queue)

    worker = _worker_check(settings)

    assert worker["status"] == "ok"
    assert worker["workers"] == 1 and worker["queue"] == jobs_worker.queue


def test_a_worker_on_other_queues_only_does_not_count(jobs_worker, settings) -> None:
    worker = _worker_check(settings)

    assert current_app.conf.task_default_queue != jobs_worker.queue
    assert worker["status"] == "unavailable" and worker["workers"] == 0
