"""A worker SIGKILLed in the middle of a batch chunk's e-mail, against a real SMTP server.

The chunk's message comes back (acks late, the Redis broker restores it) and the
chunk runs again: it sends what the killed run had not, and the batch is done only
once every message is out. The bound: at most one message is sent twice per killed
worker process (the one whose SMTP call returned before its outcome was committed),
and none is lost. The worker runs with an 8-second claim (NOTIFICATION_CLAIM_SECONDS),
so the delivery the killed process had claimed is taken over within the test.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from apps.notifications.models import Delivery, NotificationBatch
from tests.jobs import processes
from tests.jobs.conftest import process_env
from tests.jobs.worker_tasks import email_batch_start

pytestmark = [pytest.mark.worker, pytest.mark.django_db]

RECIPIENTS = 300
CLAIM_SECONDS = 8


class SlowSink(processes.SmtpSink):
    """The SMTP sink, taking a few milliseconds per message, as a real server does."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.004)
        return await super().handle_DATA(server, session, envelope)

    def received(self, marker: str) -> Counter[str]:
        with self._lock:
            return Counter(a for rcpt in self.recipients for a in rcpt if a.startswith(marker))


@pytest.fixture
def slow_smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowSink]:
    # The killed worker's connection drops mid-session, which aiosmtpd's thread logs; the
    # test counts messages, not that line (and pytest may have closed the stream it holds).
    monkeypatch.setattr(logging.getLogger("mail.log"), "disabled", True)
    with processes.smtp_sink_running(SlowSink()) as sink:
        yield sink


def _batch(schema: str, batch_id: str) -> NotificationBatch:
    with schema_context(schema):
        return NotificationBatch.objects.get(pk=batch_id)


def test_a_worker_killed_in_a_chunk_sends_at_most_one_message_twice_and_loses_none(
    jobs_tenant, slow_smtp, celery_worker
) -> None:
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = process_env(broker_url=settings.CELERY_BROKER_URL, queue=queue, smtp_port=slow_smtp.port)
    env["NOTIFICATION_CLAIM_SECONDS"] = str(CLAIM_SECONDS)
    marker = f"k{uuid.uuid4().hex[:8]}"
    addresses = {f"{marker}-{n}@batch.test" for n in range(RECIPIENTS)}
    # One process: everything it had in flight is one chunk's one message at most.
    with celery_worker(queue=queue, env=env, concurrency=1) as worker:
        with schema_context(jobs_tenant.schema):
            batch_id = email_batch_start.apply_async(args=[marker, RECIPIENTS], queue=queue).get(
                timeout=30
            )

        processes.wait_for(
            lambda: sum(slow_smtp.received(marker).values()) >= 60,
            timeout=30,
            interval=0.01,
            what="the chunk to be mailing",
        )
        worker.kill()
        at_kill = sum(slow_smtp.received(marker).values())
        assert at_kill < RECIPIENTS, "the chunk was mailed before the worker was killed"
        assert _batch(jobs_tenant.schema, batch_id).status == NotificationBatch.Status.RUNNING

        worker.start()
        processes.wait_for(
            lambda: _batch(jobs_tenant.schema, batch_id).status == NotificationBatch.Status.DONE,
            timeout=45,
            interval=0.1,
            what="the batch to be done",
        )
        when_done = slow_smtp.received(marker)
        # A late resend (the killed run's chunk message restored after its visibility
        # timeout, a retry held for its countdown) has run once the worker has nothing left.
        worker.wait_idle()
        received = slow_smtp.received(marker)

    # Done only once every message was out; none lost.
    assert set(when_done) == addresses, f"{len(addresses - set(when_done))} missing when done"
    assert set(received) == addresses
    twice = sorted(address for address, n in received.items() if n > 1)
    assert len(twice) <= 1, f"{len(twice)} recipients got the message twice (killed at {at_kill})"
    assert max(received.values()) <= 2
    batch = _batch(jobs_tenant.schema, batch_id)
    assert batch.audience["progress"]["chunks_done"] == [0]
    with schema_context(jobs_tenant.schema):
        rows = Delivery.objects.filter(notification__batch_id=batch_id)
        assert rows.count() == RECIPIENTS
        assert set(rows.values_list("status", "claimed_at")) == {("sent", None)}
