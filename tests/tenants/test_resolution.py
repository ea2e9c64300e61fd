"""Host -> tenant resolution: cached, invalidated on change, and the optional X-Tenant header."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.tenants.models import Domain
from apps.tenants.resolution import tenant_cache_clear_local, tenant_for_host
from apps.tenants.services import tenant_update


def info(client: APIClient, host: str, **headers) -> tuple[int, dict]:
    response = client.get("/api/v1/info", HTTP_HOST=host, **headers)
    return response.status_code, response.json()


@pytest.mark.django_db
def test_warm_lookup_costs_no_query(api: APIClient, tenant_a) -> None:
    info(api, tenant_a.host)  # warms the caches
    with CaptureQueriesContext(connection) as ctx:
        status, body = info(api, tenant_a.host)
    assert status == 200 and body["data"]["tenant"]["slug"] == "alpha"
    assert ctx.captured_queries == []


@pytest.mark.django_db
def test_shared_cache_answers_when_the_local_copy_is_gone(api: APIClient, tenant_a) -> None:
    info(api, tenant_a.host)
    tenant_cache_clear_local()  # what another worker process would see
    with CaptureQueriesContext(connection) as ctx:
        tenant = tenant_for_host(tenant_a.host)
    assert tenant is not None and tenant.slug == "alpha"
    assert ctx.captured_queries == []


@pytest.mark.django_db
def test_deactivation_reaches_other_processes_through_the_shared_cache(
    api: APIClient, tenant_a
) -> None:
    assert info(api, tenant_a.host)[0] == 200
    tenant_update(tenant=tenant_a.tenant, is_active=False)
    tenant_cache_clear_local()  # another process: its local copy expired, the shared one was dropped
    assert info(api, tenant_a.host)[0] == 404
    tenant_update(tenant=tenant_a.tenant, is_active=True)


@pytest.fixture
def custom_domains_allowed(settings) -> None:
    # Custom domains outside *.PLATFORM_BASE_DOMAIN must also be in ALLOWED_HOSTS.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, ".example.org"]


@pytest.mark.django_db
@pytest.mark.usefixtures("custom_domains_allowed")
def test_a_new_domain_is_served_at_once_even_after_a_cached_miss(api: APIClient, tenant_a) -> None:
    assert info(api, "alpha.example.org")[0] == 404  # cached as unknown
    Domain.objects.create(domain="alpha.example.org", tenant=tenant_a.tenant, is_primary=False)
    status, body = info(api, "alpha.example.org")
    assert status == 200 and body["data"]["tenant"]["slug"] == "alpha"


@pytest.mark.django_db
@pytest.mark.usefixtures("custom_domains_allowed")
def test_a_renamed_domain_stops_serving_the_old_name(api: APIClient, tenant_a) -> None:
    domain = Domain.objects.create(
        domain="old.example.org", tenant=tenant_a.tenant, is_primary=False
    )
    assert info(api, "old.example.org")[0] == 200
    domain = Domain.objects.get(pk=domain.pk)
    domain.domain = "new.example.org"
    domain.save()
    assert info(api, "old.example.org")[0] == 404
    assert info(api, "new.example.org")[0] == 200


@pytest.mark.django_db
def test_host_port_and_case_do_not_matter(api: APIClient, tenant_a) -> None:
    assert info(api, tenant_a.host.upper() + ":8000")[0] == 200


@pytest.mark.django_db
def test_x_tenant_header_is_ignored_when_disabled(api: APIClient, tenant_a) -> None:
    status, body = info(api, "localhost", HTTP_X_TENANT="alpha")
    assert status == 200 and body["data"]["tenant"] is None


@pytest.mark.django_db
def test_x_tenant_header_selects_a_tenant_on_the_api_host_when_enabled(
    api: APIClient, tenant_a, settings
) -> None:
    settings.TENANT_HEADER_ENABLED = True
    status, body = info(api, "localhost", HTTP_X_TENANT="alpha")
    assert status == 200 and body["data"]["tenant"]["slug"] == "alpha"
    assert info(api, "localhost", HTTP_X_TENANT="nobody")[0] == 404
    # On a tenant's own host the header cannot switch to another tenant.
    status, body = info(api, tenant_a.host, HTTP_X_TENANT="beta")
    assert body["data"]["tenant"]["slug"] == "alpha"


@pytest.mark.django_db
def test_a_malformed_x_tenant_header_is_a_404_never_a_500(
    api: APIClient, tenant_a, settings
) -> None:
    settings.TENANT_HEADER_ENABLED = True
    for junk in ("alpha\x00", "al%00pha", "x" * 5000, "alpha' OR 1=1", "ALPHA\u0000"):
        status, body = info(api, "localhost", HTTP_X_TENANT=junk)
        assert status == 404 and body["error"]["code"] == "NOT_FOUND", junk


@pytest.mark.django_db
def test_x_tenant_header_cannot_reach_an_inactive_tenant(
    api: APIClient, tenant_a, settings
) -> None:
    settings.TENANT_HEADER_ENABLED = True
    tenant_update(tenant=tenant_a.tenant, is_active=False)
    assert info(api, "localhost", HTTP_X_TENANT="alpha")[0] == 404
    tenant_update(tenant=tenant_a.tenant, is_active=True)


@pytest.mark.django_db
def test_health_answers_on_any_host(api: APIClient) -> None:
    assert api.get("/health/live", HTTP_HOST="whatever.localhost").status_code == 200


@pytest.mark.django_db
def test_warm_request_sets_no_search_path(tenant_a) -> None:
    from django.test import Client
    from django_tenants.utils import tenant_context

    client = Client()
    with tenant_context(tenant_a.tenant):
        client.force_login(tenant_a.admin())
    client.get("/api/v1/info", HTTP_HOST=tenant_a.host)  # warm: caches and search_path
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/api/v1/info", HTTP_HOST=tenant_a.host).status_code == 200
    statements = [q["sql"] for q in ctx.captured_queries]
    assert statements, "the session and user lookups run SQL"
    assert not [s for s in statements if "search_path" in s], statements


@pytest.mark.django_db
def test_switching_tenants_sets_the_search_path_again(tenant_a, tenant_b) -> None:
    from django.test import Client
    from django_tenants.utils import tenant_context

    clients = {}
    for fixture in (tenant_a, tenant_b):
        clients[fixture.schema] = Client()
        with tenant_context(fixture.tenant):
            clients[fixture.schema].force_login(fixture.admin())
    clients[tenant_a.schema].get("/api/v1/info", HTTP_HOST=tenant_a.host)
    with CaptureQueriesContext(connection) as ctx:
        assert clients[tenant_b.schema].get("/admin/", HTTP_HOST=tenant_b.host).status_code == 200
    assert any(
        tenant_b.schema in q["sql"] and "search_path" in q["sql"] for q in ctx.captured_queries
    )
