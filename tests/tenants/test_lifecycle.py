"""Deleting a tenant (API and service): deactivated at once, dropped after the retention
period or at once when confirmed, restorable until then; nothing of it left once dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import schema_exists
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection, tenant_schema_names
from apps.jobs.models import JobFailure
from apps.tenants import lifecycle
from apps.tenants.models import Domain, Tenant
from apps.tenants.tasks import tenants_purge_task
from tests.conftest import ADMIN_PASSWORD

PUBLIC = "localhost"


def create(client: APIClient, slug: str = "globex") -> dict:
    response = client.post(
        "/api/v1/tenants",
        {
            "name": slug.title(),
            "slug": slug,
            "admin_email": f"boss@{slug}.test",
            "admin_password": ADMIN_PASSWORD,
        },
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert response.status_code == 201, response.content
    return dict(response.json()["data"]["tenant"])


def delete(client: APIClient, tenant_id: int, **params: str):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.delete(
        f"/api/v1/tenants/{tenant_id}" + (f"?{query}" if query else ""), HTTP_HOST=PUBLIC
    )


def public_rows(**filters) -> list[AuditEvent]:
    tenant_connection().set_schema_to_public()
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


@pytest.mark.django_db
def test_delete_deactivates_at_once_and_keeps_the_data_for_the_retention_period(
    operator_api: APIClient, api: APIClient, settings
) -> None:
    settings.TENANT_RETENTION_DAYS = 30
    tenant = create(operator_api)
    assert api.get("/api/v1/info", HTTP_HOST="globex.localhost").status_code == 200

    response = delete(operator_api, tenant["id"])

    assert response.status_code == 202, response.content
    data = response.json()["data"]
    assert data["is_active"] is False and data["deleted_at"] is not None
    row = Tenant.objects.get(pk=tenant["id"])
    assert row.purge_after == row.deleted_at + timedelta(days=30)
    assert data["purge_after"].startswith(row.purge_after.date().isoformat())
    # Its hosts answer 404 at once; its schema, row and domains are all kept.
    assert api.get("/api/v1/info", HTTP_HOST="globex.localhost").status_code == 404
    assert schema_exists("globex")
    assert Domain.objects.filter(tenant_id=tenant["id"]).exists()
    assert "globex" not in tenant_schema_names(active_only=True)  # no periodic jobs for it
    # Listed among the tenants pending deletion, not the live ones.
    live = operator_api.get("/api/v1/tenants", HTTP_HOST=PUBLIC).json()["data"]["items"]
    pending = operator_api.get("/api/v1/tenants", {"deleted": "true"}, HTTP_HOST=PUBLIC).json()[
        "data"
    ]["items"]
    assert "globex" not in [t["slug"] for t in live]
    assert [t["slug"] for t in pending] == ["globex"]
    # Deleting it again changes nothing.
    assert delete(operator_api, tenant["id"]).status_code == 202
    assert Tenant.objects.get(pk=tenant["id"]).deleted_at == row.deleted_at


@pytest.mark.django_db
def test_a_tenant_pending_deletion_keeps_its_slug_with_a_clear_conflict(
    operator_api: APIClient,
) -> None:
    tenant = create(operator_api)
    delete(operator_api, tenant["id"])

    again = operator_api.post(
        "/api/v1/tenants",
        {"name": "Again", "slug": "globex", "admin_email": "x@globex.test"},
        format="json",
        HTTP_HOST=PUBLIC,
    )

    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "CONFLICT"
    assert "pending deletion" in error["message"] and "globex" in error["message"]
    assert error["details"]["slug"] == [error["message"]]


@pytest.mark.django_db
def test_a_tenant_pending_deletion_cannot_be_changed_or_reactivated(
    operator_api: APIClient, api: APIClient
) -> None:
    tenant = create(operator_api)
    delete(operator_api, tenant["id"])
    url = f"/api/v1/tenants/{tenant['id']}"

    for change in ({"is_active": True}, {"name": "Renamed"}):
        response = operator_api.patch(url, change, format="json", HTTP_HOST=PUBLIC)
        assert response.status_code == 409, change
        assert "restore it" in response.json()["error"]["message"].lower()

    row = Tenant.objects.get(pk=tenant["id"])
    assert row.is_active is False and row.name == "Globex" and row.deleted_at is not None
    assert api.get("/api/v1/info", HTTP_HOST="globex.localhost").status_code == 404


@pytest.mark.django_db
def test_restore_within_the_period_brings_it_back_as_it_was(
    operator_api: APIClient, api: APIClient
) -> None:
    tenant = create(operator_api)
    delete(operator_api, tenant["id"])

    response = operator_api.post(f"/api/v1/tenants/{tenant['id']}/restore", HTTP_HOST=PUBLIC)

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["is_active"] is True and data["deleted_at"] is None and data["purge_after"] is None
    assert api.get("/api/v1/info", HTTP_HOST="globex.localhost").status_code == 200
    login = api.post(
        "/api/v1/auth/login",
        {"email": "boss@globex.test", "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST="globex.localhost",
    )
    assert login.status_code == 200  # its users and their passwords are all there
    # Restoring a live tenant changes nothing.
    again = operator_api.post(f"/api/v1/tenants/{tenant['id']}/restore", HTTP_HOST=PUBLIC)
    assert again.status_code == 200 and again.json()["data"]["is_active"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"now": "true"}, {"now": "true", "confirm": "alpha"}])
def test_delete_now_needs_the_slug_repeated(operator_api: APIClient, params: dict) -> None:
    tenant = create(operator_api)

    response = delete(operator_api, tenant["id"], **params)

    assert response.status_code == 422
    assert "confirm" in response.json()["error"]["details"]
    row = Tenant.objects.get(pk=tenant["id"])
    assert row.is_active and row.deleted_at is None and schema_exists("globex")


@pytest.mark.django_db
def test_delete_now_leaves_nothing_of_the_tenant_and_frees_its_slug(
    operator_api: APIClient, api: APIClient, django_capture_on_commit_callbacks
) -> None:
    tenant = create(operator_api)
    redis = get_redis_connection("default")
    prefix = "platform-test"
    kept_for_globex = [
        f"globex:{prefix}:1:anything",
        f"{prefix}:auth:globex:u:1",
        f"{prefix}:rbac:globex:gen",
        f"{prefix}:jobs:run:sync_user_data:globex",
    ]
    other_tenants = [f"{prefix}:auth:globex2:u:1", f"alpha:{prefix}:1:anything"]
    for key in kept_for_globex + other_tenants:
        redis.set(key, "x", ex=60)
    JobFailure.objects.create(task_name="x", tenant_schema="globex", exception_type="E")

    try:
        response = delete(operator_api, tenant["id"], now="true", confirm="globex")

        assert response.status_code == 204, response.content
        assert not schema_exists("globex")
        assert not Tenant.objects.filter(pk=tenant["id"]).exists()
        assert not Domain.objects.filter(domain="globex.localhost").exists()
        assert not JobFailure.objects.filter(tenant_schema="globex").exists()
        assert [k for k in kept_for_globex if redis.exists(k)] == []
        assert all(redis.exists(k) for k in other_tenants)
        assert api.get("/api/v1/info", HTTP_HOST="globex.localhost").status_code == 404
        # The operators' log keeps what happened, with what identified the tenant.
        purged = public_rows(action="tenant.purged", target_id=str(tenant["id"]))
        assert len(purged) == 1
        assert purged[0].changes["slug"] == "globex"
        assert purged[0].changes["domains"] == ["globex.localhost"]
        # The slug is free again.
        assert create(operator_api)["slug"] == "globex"
    finally:
        redis.delete(*kept_for_globex, *other_tenants)


@pytest.mark.django_db
def test_an_old_token_is_not_taken_by_a_new_tenant_with_the_same_slug(
    operator_api: APIClient, api: APIClient
) -> None:
    tenant = create(operator_api)
    host: dict[str, Any] = {"HTTP_HOST": "globex.localhost"}
    login = api.post(
        "/api/v1/auth/login",
        {"email": "boss@globex.test", "password": ADMIN_PASSWORD},
        format="json",
        **host,
    )
    old_token = login.json()["data"]["access_token"]
    bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {old_token}", **host}
    assert api.get("/api/v1/users/me", **bearer).status_code == 200  # its state is now cached

    assert delete(operator_api, tenant["id"], now="true", confirm="globex").status_code == 204
    create(operator_api)  # the same slug, the same schema name, user ids from 1 again

    response = api.get("/api/v1/users/me", **bearer)
    assert response.status_code == 401, response.content


@pytest.mark.django_db
def test_delete_now_drops_nothing_when_the_cache_cannot_be_cleared(
    operator_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = create(operator_api)

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr("redis.client.Redis.scan_iter", unreachable)
        response = delete(operator_api, tenant["id"], now="true", confirm="globex")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert schema_exists("globex")
    row = Tenant.objects.get(pk=tenant["id"])
    assert row.deleted_at is None and row.is_active  # the whole request rolled back


@pytest.mark.django_db
def test_the_platforms_own_tenant_cannot_be_deleted(operator_api: APIClient) -> None:
    public = Tenant.objects.get(schema_name="public")
    assert delete(operator_api, public.pk).status_code == 404
    assert delete(operator_api, public.pk, now="true", confirm="public").status_code == 404
    assert (
        operator_api.post(f"/api/v1/tenants/{public.pk}/restore", HTTP_HOST=PUBLIC).status_code
        == 404
    )
    assert Tenant.objects.get(pk=public.pk).deleted_at is None


@pytest.mark.django_db
def test_delete_and_restore_are_for_operators_only(api: APIClient, tenant_a) -> None:
    url = f"/api/v1/tenants/{tenant_a.tenant.pk}"
    assert api.delete(url, HTTP_HOST=PUBLIC).status_code == 401
    assert api.post(f"{url}/restore", HTTP_HOST=PUBLIC).status_code == 401
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.deleted_at is None


@pytest.mark.django_db
def test_the_purge_drops_only_tenants_deleted_longer_ago_than_the_retention(
    operator_api: APIClient, settings
) -> None:
    settings.TENANT_RETENTION_DAYS = 30
    old, recent, restored, live = (
        create(operator_api, slug) for slug in ("old-one", "recent", "restored", "live")
    )
    for tenant in (old, recent, restored):
        delete(operator_api, tenant["id"])
    Tenant.objects.filter(pk=old["id"]).update(deleted_at=timezone.now() - timedelta(days=31))
    Tenant.objects.filter(pk=recent["id"]).update(deleted_at=timezone.now() - timedelta(days=29))
    Tenant.objects.filter(pk=restored["id"]).update(deleted_at=timezone.now() - timedelta(days=40))
    lifecycle.tenant_restore(tenant=Tenant.objects.get(pk=restored["id"]))

    assert tenants_purge_task() == ["old-one"]

    assert not schema_exists("old_one") and not Tenant.objects.filter(pk=old["id"]).exists()
    for kept in (recent, restored, live):
        assert Tenant.objects.filter(pk=kept["id"]).exists()
        assert schema_exists(kept["schema_name"])
    assert tenants_purge_task() == []


@pytest.mark.django_db
def test_the_purge_is_a_default_periodic_job() -> None:
    from apps.jobs.schedules import DEFAULT_SCHEDULES

    purge = next(d for d in DEFAULT_SCHEDULES if d.task == "tenants.purge_deleted")
    assert purge.crontab is not None and purge.args == ()
