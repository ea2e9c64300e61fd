"""A tenant's settings in the public admin: typed fields for the keys the platform knows,
`key = value` lines for the others; checked as the service checks them, saved by it."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection
from apps.tenants.models import Tenant
from apps.tenants.validators import MAX_SETTINGS_BYTES
from tests.tenants.conftest import admin_change_data
from tests.tenants.test_admin import _add, _form_errors

PUBLIC = "localhost"
LIST = "/admin/tenants/tenant/"


@pytest.fixture
def change_url(tenant_a) -> str:
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(
        settings={"rate_limit": "50/m", "theme": "dark", "max_users": 10}
    )
    return f"{LIST}{tenant_a.tenant.pk}/change/"


@pytest.mark.django_db
def test_the_change_form_shows_other_settings_as_lines(admin_client: Client, change_url) -> None:
    page = admin_client.get(change_url, HTTP_HOST=PUBLIC)
    text = page.content.decode()

    assert page.status_code == 200
    assert '<textarea name="other_settings"' in text
    assert "theme = dark\nmax_users = 10</textarea>" in text
    assert 'name="rate_limit"' in text and 'value="50/m"' in text
    # The domains beside them, as a list of rows (not JSON).
    assert 'name="domains-0-domain"' in text and 'value="alpha.localhost"' in text


@pytest.mark.django_db
def test_other_settings_are_saved_typed_through_the_service(
    admin_client: Client, tenant_a, change_url
) -> None:
    data = admin_change_data(admin_client.get(change_url, HTTP_HOST=PUBLIC))
    lines = 'theme = light\nmax_users = 25\nbeta = true\ngreeting = "42"\n\nmotto = hello world'

    saved = admin_client.post(change_url, {**data, "other_settings": lines}, HTTP_HOST=PUBLIC)

    assert saved.status_code == 302, _form_errors(saved)
    wanted = {
        "theme": "light",
        "max_users": 25,
        "beta": True,
        "greeting": "42",
        "motto": "hello world",
        "rate_limit": "50/m",
    }
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).settings == wanted
    tenant_connection().set_schema_to_public()
    row = AuditEvent.objects.get(action="tenant.updated", target_id=str(tenant_a.tenant.pk))
    assert row.changes["settings"][1] == wanted
    # Shown again as typed: the quoted number stays a string.
    again = admin_client.get(change_url, HTTP_HOST=PUBLIC).content.decode()
    assert "greeting = &quot;42&quot;" in again


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ("theme dark", "Line 1: write it as 'key = value'."),
        ("theme = dark\n9lives = 1", "Line 2: a key is a letter"),
        ("theme = dark\ntheme = light", "'theme' is given twice"),
        ("rate_limit = 100000/s", "set 'rate_limit' in its own field"),
        (f"blob = {'x' * MAX_SETTINGS_BYTES}", "bytes of JSON"),
    ],
)
def test_bad_settings_are_the_forms_error_and_nothing_is_saved(
    admin_client: Client, tenant_a, change_url, lines: str, problem: str
) -> None:
    data = admin_change_data(admin_client.get(change_url, HTTP_HOST=PUBLIC))

    refused = admin_client.post(change_url, {**data, "other_settings": lines}, HTTP_HOST=PUBLIC)

    assert refused.status_code == 200
    assert problem in " ".join(_form_errors(refused)["other_settings"])
    stored = Tenant.objects.get(pk=tenant_a.tenant.pk).settings
    assert stored == {"rate_limit": "50/m", "theme": "dark", "max_users": 10}


@pytest.mark.django_db
def test_emptying_other_settings_removes_them_and_keeps_the_rate_limit(
    admin_client: Client, tenant_a, change_url
) -> None:
    data = admin_change_data(admin_client.get(change_url, HTTP_HOST=PUBLIC))

    saved = admin_client.post(change_url, {**data, "other_settings": ""}, HTTP_HOST=PUBLIC)

    assert saved.status_code == 302
    assert Tenant.objects.get(pk=tenant_a.tenant.pk).settings == {"rate_limit": "50/m"}


@pytest.mark.django_db
def test_the_add_form_takes_other_settings(admin_client: Client) -> None:
    page = admin_client.get(f"{LIST}add/", HTTP_HOST=PUBLIC).content.decode()
    assert '<textarea name="other_settings"' in page

    bad = _add(admin_client, "hooli", other_settings="theme")
    assert bad.status_code == 200 and "other_settings" in _form_errors(bad)
    assert not Tenant.objects.filter(slug="hooli").exists()

    made = _add(admin_client, "hooli", rate_limit="100/m", other_settings="theme = dark")
    assert made.status_code == 302
    assert Tenant.objects.get(slug="hooli").settings == {"theme": "dark", "rate_limit": "100/m"}
