"""Tenants in the public admin: every write through the services, refusals on the page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists

from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection
from apps.tenants.models import Domain, Tenant
from tests.tenants.conftest import admin_change_data

PUBLIC = "localhost"
LIST = "/admin/tenants/tenant/"


def _add(client: Client, slug: str, **extra: str):
    data = {
        "name": slug.title(),
        "slug": slug,
        "admin_email": f"boss@{slug}.test",
        "rate_limit": "",
        "admin_password": "",
        **extra,
    }
    return client.post(f"{LIST}add/", data, HTTP_HOST=PUBLIC)


def _form_errors(response) -> dict:
    return dict(response.context["adminform"].form.errors)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.django_db
def test_deleting_in_the_admin_is_the_service_and_says_what_happens(
    admin_client: Client, settings
) -> None:
    settings.TENANT_RETENTION_DAYS = 30
    assert _add(admin_client, "hooli").status_code == 302
    tenant = Tenant.objects.get(slug="hooli")
    url = f"{LIST}{tenant.pk}/delete/"

    page = admin_client.get(url, HTTP_HOST=PUBLIC)
    text = page.content.decode()
    assert page.status_code == 200
    assert "30 days" in text and "restored" in text and "cannot be undone" in text

    done = admin_client.post(url, {"post": "yes"}, HTTP_HOST=PUBLIC, follow=True)

    assert done.status_code == 200
    assert any("dropped after" in m for m in _messages(done))
    tenant.refresh_from_db()
    assert tenant.deleted_at is not None and not tenant.is_active
    assert schema_exists("hooli")  # kept for the retention period
    tenant_connection().set_schema_to_public()
    assert AuditEvent.objects.filter(action="tenant.deleted", target_id=str(tenant.pk)).exists()


@pytest.mark.django_db
def test_adding_the_slug_of_a_deleted_tenant_is_a_form_error_not_a_500(
    admin_client: Client,
) -> None:
    assert _add(admin_client, "hooli").status_code == 302
    tenant = Tenant.objects.get(slug="hooli")
    admin_client.post(f"{LIST}{tenant.pk}/delete/", {"post": "yes"}, HTTP_HOST=PUBLIC)

    again = _add(admin_client, "hooli")

    assert again.status_code == 200
    assert "pending deletion" in " ".join(_form_errors(again)["slug"])
    assert Tenant.objects.filter(slug="hooli").count() == 1


@pytest.mark.django_db
def test_adding_a_slug_whose_schema_was_left_behind_is_a_form_error_not_a_500(
    admin_client: Client,
) -> None:
    # What deleting a tenant row used to leave: its schema, without a tenant.
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA hooli")

    response = _add(admin_client, "hooli")

    assert response.status_code == 200
    assert "exists without a tenant" in " ".join(_form_errors(response)["slug"])
    assert not Tenant.objects.filter(slug="hooli").exists()


@pytest.mark.django_db
def test_deleting_now_in_the_admin_needs_the_slug_then_drops_everything(
    admin_client: Client, api
) -> None:
    assert _add(admin_client, "hooli").status_code == 302
    tenant = Tenant.objects.get(slug="hooli")
    url = f"{LIST}{tenant.pk}/delete/"

    refused = admin_client.post(
        url, {"post": "yes", "now": "on", "confirm": "nope"}, HTTP_HOST=PUBLIC, follow=True
    )
    assert any("repeat its slug" in m for m in _messages(refused))
    tenant.refresh_from_db()
    assert tenant.deleted_at is None and tenant.is_active and schema_exists("hooli")

    done = admin_client.post(
        url, {"post": "yes", "now": "on", "confirm": "hooli"}, HTTP_HOST=PUBLIC, follow=True
    )
    assert any("all its data were dropped" in m for m in _messages(done))
    assert not schema_exists("hooli") and not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Domain.objects.filter(domain="hooli.localhost").exists()
    assert _add(admin_client, "hooli").status_code == 302  # the slug is free again


@pytest.mark.django_db
def test_restore_in_the_admin(admin_client: Client, api) -> None:
    assert _add(admin_client, "hooli").status_code == 302
    tenant = Tenant.objects.get(slug="hooli")
    admin_client.post(f"{LIST}{tenant.pk}/delete/", {"post": "yes"}, HTTP_HOST=PUBLIC)
    listing = admin_client.get(LIST, {"deletion": "pending"}, HTTP_HOST=PUBLIC)
    assert b"pending deletion until" in listing.content
    # Changing it is refused until it is restored: the page is read-only.
    page = admin_client.get(f"{LIST}{tenant.pk}/change/", HTTP_HOST=PUBLIC)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    activated = admin_client.post(
        LIST, {"action": "activate", "_selected_action": [tenant.pk]}, HTTP_HOST=PUBLIC, follow=True
    )
    assert any("pending deletion" in m for m in _messages(activated))
    assert not Tenant.objects.get(pk=tenant.pk).is_active

    admin_client.post(
        LIST, {"action": "restore", "_selected_action": [tenant.pk]}, HTTP_HOST=PUBLIC
    )

    tenant.refresh_from_db()
    assert tenant.is_active and tenant.deleted_at is None
    assert api.get("/api/v1/info", HTTP_HOST="hooli.localhost").status_code == 200


@pytest.mark.django_db
def test_the_list_links_each_tenant_with_the_port_it_is_served_on(
    admin_client: Client, tenant_a, settings
) -> None:
    settings.PLATFORM_URL_SCHEME = "http"

    listing = admin_client.get(LIST, HTTP_HOST="localhost:8000")

    assert listing.status_code == 200
    text = listing.content.decode()
    assert 'href="http://alpha.localhost:8000/"' in text
    assert 'href="http://alpha.localhost:8000/admin/"' in text
    assert "open site" in text and "open admin" in text


@pytest.mark.django_db
def test_the_created_message_has_the_port(admin_client: Client, settings) -> None:
    settings.PLATFORM_URL_SCHEME = "http"
    response = admin_client.post(
        f"{LIST}add/",
        {"name": "Hooli", "slug": "hooli", "admin_email": "gavin@hooli.test"},
        HTTP_HOST="localhost:8000",
        follow=True,
    )
    message = next(m for m in _messages(response) if "created at" in m)
    assert "http://hooli.localhost:8000/ " in message
    password = re.search(r"has the password (\S+) ", message)
    assert password is not None


@pytest.mark.django_db
def test_the_add_form_prepopulates_the_slug_and_has_a_rate_limit_field(
    admin_client: Client,
) -> None:
    page = admin_client.get(f"{LIST}add/", HTTP_HOST=PUBLIC)
    text = page.content.decode()
    assert page.status_code == 200
    assert "prepopulated_fields" in text or "data-prepopulated-fields" in text
    assert 'name="rate_limit"' in text and 'name="settings"' not in text

    bad = _add(admin_client, "hooli", rate_limit="lots")
    assert bad.status_code == 200 and "rate_limit" in _form_errors(bad)
    assert _add(admin_client, "hooli", rate_limit="1200/m").status_code == 302
    assert Tenant.objects.get(slug="hooli").settings == {"rate_limit": "1200/m"}


@pytest.mark.django_db
def test_the_rate_limit_is_edited_as_a_field_keeping_other_settings(
    admin_client: Client, tenant_a
) -> None:
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(settings={"theme": "dark"})
    url = f"{LIST}{tenant_a.tenant.pk}/change/"
    data = admin_change_data(admin_client.get(url, HTTP_HOST=PUBLIC))

    bad = admin_client.post(url, {**data, "rate_limit": "0/m"}, HTTP_HOST=PUBLIC)
    assert bad.status_code == 200 and "rate_limit" in _form_errors(bad)
    ok = admin_client.post(url, {**data, "rate_limit": "50/m"}, HTTP_HOST=PUBLIC)

    assert ok.status_code == 302, ok.content[:2000]
    stored = Tenant.objects.get(pk=tenant_a.tenant.pk).settings
    assert stored == {"theme": "dark", "rate_limit": "50/m"}
    tenant_connection().set_schema_to_public()
    row = AuditEvent.objects.get(action="tenant.updated", target_id=str(tenant_a.tenant.pk))
    assert row.changes["settings"][1] == {"theme": "dark", "rate_limit": "50/m"}


def _domains_post(data: dict[str, str], rows: list[tuple[str, bool]]) -> dict[str, str]:
    """The change form's data with the domain inline replaced by `rows`."""
    kept = {k: v for k, v in data.items() if not k.startswith("domains-")}
    existing = {d.domain: d.pk for d in Domain.objects.all()}
    initial = sum(1 for host, _ in rows if host in existing)
    kept.update(
        {
            "domains-TOTAL_FORMS": str(len(rows)),
            "domains-INITIAL_FORMS": str(initial),
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
        }
    )
    ordered = sorted(rows, key=lambda r: r[0] not in existing)  # existing rows first
    for i, (host, primary) in enumerate(ordered):
        kept[f"domains-{i}-domain"] = host
        if primary:
            kept[f"domains-{i}-is_primary"] = "on"
        if host in existing:
            kept[f"domains-{i}-id"] = str(existing[host])
    return kept


@pytest.mark.django_db
def test_domains_are_edited_as_a_list_through_the_service(
    admin_client: Client, tenant_a, tenant_b
) -> None:
    url = f"{LIST}{tenant_a.tenant.pk}/change/"
    data = admin_change_data(admin_client.get(url, HTTP_HOST=PUBLIC))

    for rows, problem in (
        ([("alpha.localhost", True), ("gamma.localhost", False)], "Under localhost"),
        ([("alpha.localhost", True), ("beta.localhost", False)], "already exists"),
        (
            [("alpha.localhost", False), ("app.alpha.localhost", False)],
            "one domain must be primary",
        ),
        ([("app.alpha.localhost", True)], "cannot be removed"),
        ([("alpha.localhost", True), ("not a host", False)], "host name"),
        ([("alpha.localhost", True), ("elsewhere.test", False)], "ALLOWED_HOSTS"),
    ):
        refused = admin_client.post(url, _domains_post(data, rows), HTTP_HOST=PUBLIC)
        assert refused.status_code == 200, rows
        errors = " ".join(
            str(e)
            for inline in refused.context["inline_admin_formsets"]
            for e in [*inline.formset.non_form_errors(), *inline.formset.errors]
        )
        assert problem in errors, (rows, errors)
    assert list(Domain.objects.filter(tenant=tenant_a.tenant).values_list("domain", flat=True)) == [
        "alpha.localhost"
    ]

    ok = admin_client.post(
        url,
        _domains_post(data, [("alpha.localhost", False), ("app.alpha.localhost", True)]),
        HTTP_HOST=PUBLIC,
    )

    assert ok.status_code == 302, ok.content[:3000]
    domains = dict(
        Domain.objects.filter(tenant=tenant_a.tenant).values_list("domain", "is_primary")
    )
    assert domains == {"alpha.localhost": False, "app.alpha.localhost": True}
    tenant_connection().set_schema_to_public()
    row = AuditEvent.objects.get(action="tenant.domains_changed")
    assert row.changes["domains"] == [
        ["alpha.localhost (primary)"],
        ["alpha.localhost", "app.alpha.localhost (primary)"],
    ]


@pytest.mark.django_db
def test_the_domain_pages_are_read_only(admin_client: Client, tenant_a) -> None:
    domain = Domain.objects.get(domain="alpha.localhost")
    assert admin_client.get("/admin/tenants/domain/", HTTP_HOST=PUBLIC).status_code == 200
    assert admin_client.get("/admin/tenants/domain/add/", HTTP_HOST=PUBLIC).status_code == 403
    changed = admin_client.post(
        f"/admin/tenants/domain/{domain.pk}/change/",
        {"domain": "stolen.localhost", "tenant": tenant_a.tenant.pk},
        HTTP_HOST=PUBLIC,
    )
    assert changed.status_code == 403
    deleted = admin_client.post(
        f"/admin/tenants/domain/{domain.pk}/delete/", {"post": "yes"}, HTTP_HOST=PUBLIC
    )
    assert deleted.status_code == 403
    assert Domain.objects.get(pk=domain.pk).domain == "alpha.localhost"
