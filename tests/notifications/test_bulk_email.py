"""send_bulk_email run again after its worker died: what it had handled is not sent twice."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django_redis import get_redis_connection

from apps.notifications.tasks import BulkProgress, send_bulk_email


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs in the task (no handler catches it)."""


class DyingBackend(LocmemBackend):
    """The server accepts every message; the worker dies as the (`accepted` + 1)th is
    accepted, before the task hears of it."""

    accepted = 0

    def send_messages(self, messages: Any) -> int:
        sent = super().send_messages(messages)
        DyingBackend.accepted -= 1
        if DyingBackend.accepted < 0:
            raise WorkerKilled
        return sent


@pytest.fixture
def task_id() -> Iterator[str]:
    task_id = uuid.uuid4().hex
    yield task_id
    key = BulkProgress(task_id).key
    assert key is not None
    get_redis_connection("default").delete(key)


def test_a_bulk_send_redelivered_after_its_worker_died_sends_only_what_it_had_not(
    settings, task_id
) -> None:
    recipients = [f"user{i}@example.com" for i in range(7)]
    settings.EMAIL_BACKEND = f"{__name__}.DyingBackend"
    DyingBackend.accepted = 3
    with pytest.raises(WorkerKilled):
        send_bulk_email.apply(
            args=(recipients, "News", "Body"), kwargs={"chunk_size": 3}, task_id=task_id
        )
    assert len(mail.outbox) == 4  # three recorded, and the one in flight when it died

    # Acks late: the same message (the same task id) comes again.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    counts = send_bulk_email.apply(
        args=(recipients, "News", "Body"), kwargs={"chunk_size": 3}, task_id=task_id
    ).get()

    received = Counter(m.to[0] for m in mail.outbox)
    assert set(received) == set(recipients)  # none lost
    assert {a for a, n in received.items() if n > 1} == {recipients[3]}  # only the one in flight
    assert (counts["handled_before"], counts["sent"]) == (3, 4)
