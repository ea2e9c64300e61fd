"""Liveness and readiness against real services; readiness turns 503 naming what is down."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.core import health
from devtools.services import free_port, redis_binary


@pytest.fixture(autouse=True)
def _no_remembered_worker_answer() -> Iterator[None]:
    health.worker_status_forget()
    yield
    health.worker_status_forget()


@pytest.fixture
def disposable_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so the test can stop it."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            str(redis_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", process
    process.kill()
    process.wait()


@pytest.mark.django_db
def test_live_is_ok_without_touching_services(api: APIClient, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = api.get("/health/live", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_cache_and_broker(api: APIClient) -> None:
    response = api.get("/health/ready", HTTP_HOST="localhost")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "cache", "broker", "worker"}
    assert all(body["checks"][name]["status"] == "ok" for name in ("database", "cache", "broker"))


@pytest.mark.django_db
def test_ready_is_503_naming_the_cache_when_redis_goes_away(
    api: APIClient, settings, disposable_redis
) -> None:
    url, process = disposable_redis
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": url},
    }
    assert api.get("/health/ready", HTTP_HOST="localhost").status_code == 200

    process.kill()
    process.wait()
    response = api.get("/health/ready", HTTP_HOST="localhost")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["cache"]
    assert body["checks"]["cache"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_ready_is_503_naming_the_broker_when_it_is_unreachable(api: APIClient, settings) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/1"
    response = api.get("/health/ready", HTTP_HOST="localhost")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


@pytest.mark.django_db
def test_api_keeps_answering_when_redis_is_down(
    api: APIClient, settings, disposable_redis, tenant_a
) -> None:
    # Rate limiting and the shared tenant cache fail open; the database answers.
    url, process = disposable_redis
    settings.CACHES = {
        name: {**config, "LOCATION": url} for name, config in settings.CACHES.items()
    }
    process.kill()
    process.wait()
    response = api.get("/api/v1/info", HTTP_HOST=tenant_a.host)
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


@pytest.mark.django_db
def test_ready_reports_no_worker_and_stays_ready_by_default(api: APIClient) -> None:
    # No worker runs in this test session (the jobs tests' own consume queues of their own).
    response = api.get("/health/ready", HTTP_HOST="localhost")

    assert response.status_code == 200
    worker = response.json()["checks"]["worker"]
    assert worker["status"] == "unavailable"
    assert worker["queue"] == "celery" and worker["workers"] == 0
    assert worker["duration_ms"] < 2000  # the short timeout, not the broker's


@pytest.mark.django_db
def test_ready_fails_without_a_worker_when_one_is_required(api: APIClient, settings) -> None:
    settings.READINESS_REQUIRE_WORKER = True

    response = api.get("/health/ready", HTTP_HOST="localhost")

    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


@pytest.mark.django_db
def test_the_workers_answer_is_kept_a_few_seconds(api: APIClient, monkeypatch, settings) -> None:
    asked: list[int] = []

    def ask() -> dict[str, object]:
        asked.append(1)
        return {"status": "ok", "queue": "celery", "workers": 1}

    monkeypatch.setattr(health, "_worker_ask", ask)
    for _ in range(5):
        assert (
            api.get("/health/ready", HTTP_HOST="localhost").json()["checks"]["worker"]["status"]
            == "ok"
        )
    assert len(asked) == 1

    settings.READINESS_WORKER_CACHE_SECONDS = 0
    api.get("/health/ready", HTTP_HOST="localhost")
    assert len(asked) == 2


@pytest.mark.django_db
def test_ready_does_not_ask_the_workers_through_an_unreachable_broker(
    api: APIClient, settings, monkeypatch
) -> None:
    monkeypatch.setattr(health, "_worker_ask", lambda: pytest.fail("asked through no broker"))
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/1"

    response = api.get("/health/ready", HTTP_HOST="localhost")

    assert response.json()["checks"]["worker"]["status"] == "unavailable"
