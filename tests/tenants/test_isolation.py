"""Rows of tenant A are invisible from tenant B: through the ORM, the host, the admin and the cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django_redis import get_redis_connection
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import User
from apps.core.tenancy import current_schema
from tests.conftest import ADMIN_PASSWORD


@pytest.mark.django_db
def test_rows_created_in_a_are_invisible_in_b_and_public(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        User.objects.create_user("only-in-a@example.com", ADMIN_PASSWORD)
        assert User.objects.filter(email="only-in-a@example.com").exists()
    with tenant_context(tenant_b.tenant):
        assert not User.objects.filter(email="only-in-a@example.com").exists()
    with schema_context("public"):
        assert not User.objects.filter(email="only-in-a@example.com").exists()


def _next_user_id_of(tenant) -> int:
    from django.db import connection

    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM accounts_user_id_seq")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
def test_equal_user_ids_in_two_tenants_are_different_people(tenant_a, tenant_b) -> None:
    # Both admins were the first user of a schema cloned from the same template.
    a, b = tenant_a.admin(), tenant_b.admin()
    assert a.pk == b.pk == 1
    assert a.email != b.email
    # Each schema has its own sequence: users created in A do not move B's ids.
    before = _next_user_id_of(tenant_b.tenant)
    with tenant_context(tenant_a.tenant):
        User.objects.create_user("second@alpha.test", ADMIN_PASSWORD)
        User.objects.create_user("third@alpha.test", ADMIN_PASSWORD)
    assert _next_user_id_of(tenant_b.tenant) == before


def _admin_client(tenant_fixture) -> Client:
    client = Client()
    with tenant_context(tenant_fixture.tenant):
        client.force_login(tenant_fixture.admin())
    return client


@pytest.mark.django_db
def test_admin_of_a_lists_only_a_users(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        User.objects.create_user("visible-only-in-a@example.com", ADMIN_PASSWORD)

    page_a = _admin_client(tenant_a).get("/admin/accounts/user/", HTTP_HOST=tenant_a.host)
    assert page_a.status_code == 200
    assert b"visible-only-in-a@example.com" in page_a.content
    assert tenant_b.admin_email.encode() not in page_a.content

    page_b = _admin_client(tenant_b).get("/admin/accounts/user/", HTTP_HOST=tenant_b.host)
    assert page_b.status_code == 200
    assert b"visible-only-in-a@example.com" not in page_b.content


@pytest.mark.django_db
def test_a_session_from_tenant_a_is_not_a_session_on_tenant_b(tenant_a, tenant_b) -> None:
    client = _admin_client(tenant_a)
    response = client.get("/admin/accounts/user/", HTTP_HOST=tenant_b.host)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_tenant_admin_cannot_reach_platform_tables(tenant_a) -> None:
    client = _admin_client(tenant_a)
    index = client.get("/admin/", HTTP_HOST=tenant_a.host)
    assert index.status_code == 200
    assert b"/admin/accounts/user/" in index.content
    for shared in (b"/admin/tenants/", b"/admin/django_celery_beat/"):
        assert shared not in index.content
    for path in (
        "/admin/tenants/tenant/",
        "/admin/tenants/domain/",
        "/admin/django_celery_beat/periodictask/",
    ):
        assert client.get(path, HTTP_HOST=tenant_a.host).status_code == 404, path


@pytest.mark.django_db
def test_public_admin_manages_tenants_and_not_tenant_users(operator, tenant_a) -> None:
    client = Client()
    client.force_login(operator)
    index = client.get("/admin/", HTTP_HOST="localhost")
    assert b"/admin/tenants/tenant/" in index.content
    tenants_page = client.get("/admin/tenants/tenant/", HTTP_HOST="localhost")
    assert tenants_page.status_code == 200
    assert b"Tenant Alpha" in tenants_page.content
    users_page = client.get("/admin/accounts/user/", HTTP_HOST="localhost")
    assert tenant_a.admin_email.encode() not in users_page.content


@pytest.mark.django_db
def test_admin_creates_a_tenant_through_the_provisioning_service(operator) -> None:
    from django_tenants.utils import schema_exists

    from apps.tenants.models import Tenant

    client = Client()
    client.force_login(operator)
    response = client.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Initech",
            "slug": "initech",
            "settings": "{}",
            "admin_email": "bill@initech.test",
            "admin_password": "",
        },
        HTTP_HOST="localhost",
    )
    assert response.status_code == 302, response.content[:2000]
    tenant = Tenant.objects.get(slug="initech")
    assert schema_exists("initech")
    with tenant_context(tenant):
        assert User.objects.get(email="bill@initech.test").is_superuser


@pytest.mark.django_db
def test_cache_keys_are_scoped_to_the_tenant(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        cache.set("greeting", "hello from A", 60)
        key_a = cache.make_key("greeting")
        assert current_schema() == tenant_a.schema
    with tenant_context(tenant_b.tenant):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from B", 60)
        key_b = cache.make_key("greeting")
    with tenant_context(tenant_a.tenant):
        assert cache.get("greeting") == "hello from A"
        cache.delete("greeting")
    with tenant_context(tenant_b.tenant):
        cache.delete("greeting")

    assert key_a != key_b
    assert key_a.startswith(f"{tenant_a.schema}:") and key_b.startswith(f"{tenant_b.schema}:")
    # The real keys in Redis carry the schema too.
    with tenant_context(tenant_a.tenant):
        cache.set("probe", 1, 60)
        raw = get_redis_connection("default")
        assert raw.exists(cache.make_key("probe")) == 1
        cache.delete("probe")
