"""The periodic jobs' effects, their default schedules, and the fan-out over active tenants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_redis import get_redis_connection
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.authentication import user_state_key
from apps.accounts.models import PasswordResetToken, Session, User
from apps.accounts.tasks import (
    cleanup_expired_sessions_task,
    cleanup_public_task,
    sync_user_data_task,
)
from apps.core.tenancy import tenant_schema_names
from apps.jobs.events import events_prune
from apps.jobs.models import ConsumedEvent, OutboxEvent
from apps.jobs.periodic import FAN_OUT, job_fan_out, job_fan_out_continue, tenant_job_task
from apps.jobs.run_flags import run_flag_key, run_flag_release
from apps.jobs.schedules import DEFAULT_SCHEDULES, schedules_ensure
from apps.rbac.grants import grants_for_user, grants_key
from apps.rbac.models import Role, RoleAssignment
from platform_site.celery import app
from tests.accounts.factories import make_user

DAY = timedelta(days=1)


def _session(user: User, **fields) -> Session:
    now = timezone.now()
    defaults = {"last_used_at": now, "expires_at": now + DAY, "refresh_jti": uuid.uuid4().hex}
    return Session.objects.create(user=user, **{**defaults, **fields})


def _reset_token(user: User, **fields) -> PasswordResetToken:
    defaults = {"token_hash": uuid.uuid4().hex, "expires_at": timezone.now() + DAY}
    return PasswordResetToken.objects.create(user=user, **{**defaults, **fields})


# ------------------------------------------------------------------ cleanup_expired_sessions


@pytest.mark.django_db
def test_cleanup_removes_what_ended_and_keeps_what_is_live(tenant_a) -> None:
    now = timezone.now()
    with tenant_context(tenant_a.tenant):
        user = make_user()
        live = _session(user)
        recently_revoked = _session(user, revoked_at=now - DAY)  # kept a week, for the audit
        _session(user, expires_at=now - 8 * DAY)
        _session(user, revoked_at=now - 8 * DAY)
        valid_token = _reset_token(user)
        _reset_token(user, expires_at=now - timedelta(minutes=1))
        _reset_token(user, used_at=now)
        retention = settings.USER_RETENTION_DAYS
        gone = make_user(is_deleted=True, deleted_at=now - timedelta(days=retention + 1))
        recently_gone = make_user(is_deleted=True, deleted_at=now - timedelta(days=retention - 1))

        counts = cleanup_expired_sessions_task()

        assert counts["sessions"] == 2
        assert counts["password_reset_tokens"] == 2
        assert counts["users_purged"] == 1
        # The single sign-on records are cleaned by the same job (tests/sso tests what).
        assert counts["sso_login_states"] == 0 and counts["sso_exchange_codes"] == 0
        assert set(Session.objects.filter(user=user)) == {live, recently_revoked}
        assert list(PasswordResetToken.objects.filter(user=user)) == [valid_token]
        assert not User.objects.filter(pk=gone.pk).exists()
        assert User.objects.filter(pk=recently_gone.pk).exists()
        # Run again: nothing left to do.
        again = cleanup_expired_sessions_task()
        assert (again["sessions"], again["password_reset_tokens"], again["users_purged"]) == (
            0,
            0,
            0,
        )


@pytest.mark.django_db
def test_the_public_schema_is_cleaned_too(operator) -> None:
    # Platform operators sign in on the public host: their sessions, reset tokens and
    # event rows live in public, where the per-tenant job never runs.
    now = timezone.now()
    old = now - timedelta(days=settings.JOBS_EVENT_RETENTION_DAYS + 1)
    live = _session(operator)
    _session(operator, expires_at=now - 8 * DAY)
    _reset_token(operator, used_at=now)
    dispatched = OutboxEvent.objects.create(
        event_type="test.old", source="tests", data={}, dispatched_at=old
    )
    pending = OutboxEvent.objects.create(event_type="test.pending", source="tests", data={})
    OutboxEvent.objects.filter(pk=pending.pk).update(occurred_at=old)

    counts = cleanup_public_task()

    assert (counts["sessions"], counts["password_reset_tokens"]) == (1, 1)
    assert list(Session.objects.filter(user=operator)) == [live]
    assert not OutboxEvent.objects.filter(pk=dispatched.pk).exists()
    assert OutboxEvent.objects.filter(pk=pending.pk).exists()
    assert "jobs.cleanup_public" in [d.name for d in DEFAULT_SCHEDULES]


@pytest.mark.django_db
def test_cleanup_prunes_old_dispatched_events_but_never_pending_ones(tenant_a) -> None:
    old = timezone.now() - timedelta(days=settings.JOBS_EVENT_RETENTION_DAYS + 1)
    with tenant_context(tenant_a.tenant):
        dispatched = OutboxEvent.objects.create(
            event_type="test.old", source="tests", data={}, dispatched_at=old
        )
        pending = OutboxEvent.objects.create(
            event_type="test.old", source="tests", data={}, occurred_at=old
        )
        fresh = OutboxEvent.objects.create(
            event_type="test.old", source="tests", data={}, dispatched_at=timezone.now()
        )
        ConsumedEvent.objects.create(consumer="test", event_id=uuid.uuid4(), consumed_at=old)
        kept_mark = ConsumedEvent.objects.create(consumer="test", event_id=uuid.uuid4())

        counts = events_prune(older_than_days=settings.JOBS_EVENT_RETENTION_DAYS)

        assert counts == {"outbox_events": 1, "consumed_events": 1}
        assert not OutboxEvent.objects.filter(pk=dispatched.pk).exists()
        assert set(OutboxEvent.objects.filter(event_type="test.old")) == {pending, fresh}
        assert list(ConsumedEvent.objects.filter(consumer="test")) == [kept_mark]


# ------------------------------------------------------------------ sync_user_data


@pytest.mark.django_db
def test_sync_drops_cached_state_that_no_longer_matches_and_keeps_the_rest(
    tenant_a, redis_keys_cleanup
) -> None:
    redis = get_redis_connection("default")
    with tenant_context(tenant_a.tenant):
        current, changed, purged = make_user(), make_user(), make_user()
        for user in (current, changed, purged):
            # What the gateway caches for a bearer request.
            from apps.accounts.authentication import _load_user

            _load_user(user.pk, cache=True)
        keys = [user_state_key(u.pk) for u in (current, changed, purged)]
        redis_keys_cleanup.extend(keys)
        # Changes behind the cache's back (an UPDATE, a row gone), as a lost invalidation leaves.
        User.objects.filter(pk=changed.pk).update(is_active=False)
        purged_pk = purged.pk
        User.objects.filter(pk=purged_pk).delete()
        redis.set(user_state_key(purged_pk), redis.get(keys[0]) or b"{}")

        report = sync_user_data_task()

        assert report["auth_cache_checked"] == 3
        assert report["auth_cache_dropped"] == 2
        assert redis.exists(user_state_key(current.pk))
        assert not redis.exists(user_state_key(changed.pk))
        assert not redis.exists(user_state_key(purged_pk))
        assert report["search_vectors_updated"] == 0
        assert sync_user_data_task()["auth_cache_dropped"] == 0


@pytest.mark.django_db
def test_sync_drops_cached_grants_that_differ_from_the_roles(tenant_a, redis_keys_cleanup) -> None:
    redis = get_redis_connection("default")
    with tenant_context(tenant_a.tenant):
        # Entries other tests left behind (Redis is not rolled back with them).
        leftovers = list(redis.scan_iter(match=grants_key("*")))
        if leftovers:
            redis.delete(*leftovers)
        steady, promoted = make_user(), make_user()
        for user in (steady, promoted):
            grants_for_user(user.pk)  # computed and cached
            redis_keys_cleanup.append(grants_key(user.pk))
        # An assignment written without the services' invalidation (a raw insert, say).
        RoleAssignment.objects.bulk_create(
            [RoleAssignment(user=promoted, role=Role.objects.get(system_key="admin"))]
        )

        report = sync_user_data_task()

        assert report["grants_checked"] == 2
        assert report["grants_dropped"] == 1
        assert redis.exists(grants_key(steady.pk))
        assert not redis.exists(grants_key(promoted.pk))
        assert grants_for_user(promoted.pk).has("users.view")


# ------------------------------------------------------------------ schedules


@pytest.mark.django_db
def test_default_schedules_are_created_once_and_operator_edits_are_kept() -> None:
    PeriodicTask.objects.filter(name__in=[d.name for d in DEFAULT_SCHEDULES]).delete()

    assert sorted(schedules_ensure()) == sorted(d.name for d in DEFAULT_SCHEDULES)

    cleanup = PeriodicTask.objects.get(name="jobs.cleanup_expired_sessions")
    assert cleanup.task == "core.jobs_fan_out"
    assert json.loads(cleanup.args) == ["cleanup_expired_sessions"]
    assert (cleanup.crontab.minute, cleanup.crontab.hour) == ("0", "3")
    assert str(cleanup.crontab.timezone) == "UTC"
    sync = PeriodicTask.objects.get(name="jobs.sync_user_data")
    assert (sync.interval.every, sync.interval.period) == (1800, "seconds")
    relay = PeriodicTask.objects.get(name="core.outbox_relay")
    assert (relay.interval.every, relay.interval.period) == (10, "seconds")
    assert relay.expire_seconds == 10
    # Every fanned-out job is one the fan-out knows, run by a task a worker has.
    app.loader.import_default_modules()
    for default in DEFAULT_SCHEDULES:
        assert default.task in app.tasks
        if default.task == "core.jobs_fan_out":
            assert tenant_job_task(default.args[0]).name in app.tasks

    # An operator moves the cleanup to 04:30 and disables the sync.
    later = CrontabSchedule.objects.create(minute="30", hour="4", timezone="UTC")
    PeriodicTask.objects.filter(pk=cleanup.pk).update(crontab=later)
    PeriodicTask.objects.filter(pk=sync.pk).update(enabled=False)

    assert schedules_ensure() == []
    assert PeriodicTask.objects.get(pk=cleanup.pk).crontab_id == later.pk
    assert PeriodicTask.objects.get(pk=sync.pk).enabled is False
    assert PeriodicTask.objects.filter(name="jobs.cleanup_expired_sessions").count() == 1


# ------------------------------------------------------------------ fan-out


@pytest.fixture
def fan_out_queue() -> Iterator[str]:
    """A queue no worker reads: what the fan-out sends stays there to be counted, then goes."""
    queue = f"fanout-{uuid.uuid4().hex[:8]}"
    yield queue
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


def _queued(queue: str) -> list[dict]:
    """The messages waiting in `queue` (headers and all), read without consuming them for good."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        messages = []
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            messages.append(message)
        for message in messages:
            message.requeue()
        return [m.headers for m in messages]


@pytest.mark.django_db
def test_fan_out_queues_once_per_active_tenant_and_never_floods(
    tenant_a, tenant_b, fan_out_queue
) -> None:
    job = "sync_user_data"
    tenant_b.tenant.is_active = False
    tenant_b.tenant.save(update_fields=["is_active"])
    active = tenant_schema_names(active_only=True)
    assert tenant_a.schema in active and tenant_b.schema not in active
    try:
        first = job_fan_out(job, queue=fan_out_queue)
        assert sorted(first) == sorted(active)
        headers = _queued(fan_out_queue)
        assert sorted(h["_schema_name"] for h in headers) == sorted(active)
        assert {h["task"] for h in headers} == {"accounts.sync_user_data"}

        # The runs are still queued: the next beat tick queues nothing more.
        assert job_fan_out(job, queue=fan_out_queue) == []
        assert job_fan_out(job, queue=fan_out_queue) == []
        assert len(_queued(fan_out_queue)) == len(active)

        # tenant_a's run ends (the worker clears its flag): only tenant_a is queued again.
        redis = get_redis_connection("default")
        run_id = redis.get(run_flag_key(job, tenant_a.schema)).decode()
        run_flag_release(job, tenant_a.schema, "someone-else")  # not the owner: no effect
        assert job_fan_out(job, queue=fan_out_queue) == []
        run_flag_release(job, tenant_a.schema, run_id)
        assert job_fan_out(job, queue=fan_out_queue) == [tenant_a.schema]
    finally:
        redis = get_redis_connection("default")
        redis.delete(*[run_flag_key(job, schema) for schema in active])


def _continuation(queue: str) -> dict | None:
    """The kwargs of the fan-out continuation waiting in `queue` (taken off it), if any."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        kept, found = [], None
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            if message.headers["task"] == "core.jobs_fan_out" and found is None:
                found = message.decode()[1]  # protocol 2 body: (args, kwargs, embed)
                message.ack()
            else:
                kept.append(message)
        for message in kept:
            message.requeue()
    return found


@pytest.mark.django_db
def test_fan_out_walks_the_tenants_a_page_at_a_time(tenant_a, tenant_b, fan_out_queue) -> None:
    """A page of one tenant: the next page waits until the previous run is over, and a
    second beat tick during the walk queues nothing."""
    job = "sync_user_data"
    active = tenant_schema_names(active_only=True)
    assert len(active) >= 2
    redis = get_redis_connection("default")
    try:
        with override_settings(JOBS_FAN_OUT_BATCH=1):
            queued = job_fan_out(job, queue=fan_out_queue)
            assert queued == active[:1]
            assert job_fan_out(job, queue=fan_out_queue) == []  # the walk goes on: nothing
            step = _continuation(fan_out_queue)
            assert step is not None and step["after_id"] > 0 and step["previous"] == active[:1]

            # The first run is still pending: the continuation only sends itself again.
            assert job_fan_out_continue(job, **step) == []
            again = _continuation(fan_out_queue)
            assert again == step
            assert len(_queued(fan_out_queue)) == 1  # still only the first tenant's run

            for index, schema in enumerate(active[1:], start=1):
                run_id = redis.get(run_flag_key(job, active[index - 1])).decode()
                run_flag_release(job, active[index - 1], run_id)  # the previous run ended
                assert job_fan_out_continue(job, **step) == [schema]
                step = _continuation(fan_out_queue)
                assert step is not None  # a full page: the walk goes on
            # The page after the last tenant is empty: the walk ends, its flag goes.
            assert redis.get(run_flag_key(job, FAN_OUT)) is not None
            run_id = redis.get(run_flag_key(job, active[-1])).decode()
            run_flag_release(job, active[-1], run_id)
            assert job_fan_out_continue(job, **step) == []
            assert _continuation(fan_out_queue) is None
            assert redis.get(run_flag_key(job, FAN_OUT)) is None
            headers = _queued(fan_out_queue)
            assert sorted(h["_schema_name"] for h in headers) == sorted(active)
            # A lost walk (its flag expired or taken over) stops instead of going on twice.
            assert job_fan_out_continue(job, **{**step, "walk": "another"}) == []
    finally:
        redis.delete(*[run_flag_key(job, schema) for schema in [*active, FAN_OUT]])


@pytest.mark.django_db
def test_a_queued_run_for_a_tenant_deactivated_since_does_not_run(tenant_a) -> None:
    """Checked when the task runs, not only when it is queued."""
    tenant_a.tenant.is_active = False
    tenant_a.tenant.save(update_fields=["is_active"])
    with tenant_context(tenant_a.tenant):
        user = make_user()
        _session(user, expires_at=timezone.now() - 30 * DAY)
        result = cleanup_expired_sessions_task.apply(
            headers={"_schema_name": tenant_a.schema, "_platform_job": "cleanup_expired_sessions"}
        )
        assert result.get() is None
        assert Session.objects.filter(user=user).count() == 1  # untouched


@pytest.mark.django_db
def test_an_unknown_job_is_refused() -> None:
    with schema_context("public"), pytest.raises(KeyError, match="Unknown job"):
        job_fan_out("no_such_job")
