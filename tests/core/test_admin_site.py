"""The admin as a Django user expects it, on a tenant's host and on the public host: the
tenant's name in the titles, correct plurals, no Groups in a tenant, an SSO link only when
the tenant has a provider, and a page (not JSON) for a browser on an unknown host."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.sso.models import IdentityProvider

PUBLIC = "localhost"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# A plural Django built by adding "s" where English does not: "Deliverys", "Batchs".
_BAD_PLURAL = re.compile(r"(?:[^aeiou\W]ys|chs|shs|sss|xs|zs)\b", re.IGNORECASE)


@pytest.fixture
def tenant_admin(tenant_a) -> Client:
    client = Client(raise_request_exception=False)
    with tenant_context(tenant_a.tenant):
        client.force_login(tenant_a.admin())
    return client


@pytest.fixture
def operator_client(operator: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    return client


def _model_names(page) -> list[str]:
    return [str(model["name"]) for app in page.context["app_list"] for model in app["models"]]


def _provider(enabled: bool) -> IdentityProvider:
    return IdentityProvider.objects.create(
        slug="corp", name="Corp", issuer="https://idp.corp.test", client_id="x", enabled=enabled
    )


@pytest.mark.parametrize("model", apps.get_models(), ids=lambda m: m._meta.label)
def test_no_model_has_a_misspelt_plural(model) -> None:
    plural = str(model._meta.verbose_name_plural)
    assert not _BAD_PLURAL.search(plural), plural


@pytest.mark.django_db
def test_a_tenant_admin_index_reads_the_tenants_name_and_correct_plurals(
    tenant_a, tenant_admin: Client
) -> None:
    page = tenant_admin.get("/admin/", HTTP_HOST=tenant_a.host)
    text = page.content.decode()

    assert page.status_code == 200
    name = tenant_a.tenant.name
    assert page.context["site_header"] == f"{name} administration"
    assert page.context["site_title"] == f"{name} admin"
    assert page.context["title"] == f"{name}: site administration"
    assert f"<title>{name}: site administration | {name} admin</title>" in text
    names = _model_names(page)
    assert {"Deliveries", "Notification batches", "External identities"} <= set(names)
    assert not [n for n in names if _BAD_PLURAL.search(n)]
    assert "Groups" not in names


@pytest.mark.django_db
def test_the_public_admin_index_reads_platform_administration(operator_client: Client) -> None:
    page = operator_client.get("/admin/", HTTP_HOST=PUBLIC)

    assert page.status_code == 200
    assert page.context["site_header"] == "Platform administration"
    assert "Platform administration" in page.content.decode()
    assert "Tenants" in _model_names(page)
    assert not [n for n in _model_names(page) if _BAD_PLURAL.search(n)]


@pytest.mark.django_db
def test_one_tenants_title_does_not_stick_to_the_next_request(
    tenant_a, tenant_admin: Client, operator_client: Client
) -> None:
    tenant_admin.get("/admin/", HTTP_HOST=tenant_a.host)

    page = operator_client.get("/admin/", HTTP_HOST=PUBLIC)

    assert tenant_a.tenant.name not in page.content.decode()


@pytest.mark.django_db
def test_the_login_page_of_a_tenant_without_a_provider_offers_no_sso(tenant_a) -> None:
    page = Client().get("/admin/login/", HTTP_HOST=tenant_a.host)
    text = page.content.decode()

    assert page.status_code == 200
    assert f"{tenant_a.tenant.name} administration" in text
    assert "identity provider" not in text and "/admin/sso/" not in text


@pytest.mark.django_db
def test_a_disabled_provider_offers_no_sso_an_enabled_one_does(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        provider = _provider(enabled=False)
    without = Client().get("/admin/login/", HTTP_HOST=tenant_a.host).content.decode()
    with tenant_context(tenant_a.tenant):
        provider.enabled = True
        provider.save()
    with_one = Client().get("/admin/login/", HTTP_HOST=tenant_a.host).content.decode()

    assert "/admin/sso/" not in without
    assert "/admin/sso/" in with_one


@pytest.mark.django_db
def test_the_public_login_page_offers_no_sso() -> None:
    page = Client().get("/admin/login/", HTTP_HOST=PUBLIC)

    assert page.status_code == 200
    assert "/admin/sso/" not in page.content.decode()


@pytest.mark.django_db
def test_a_browser_on_an_unknown_host_gets_a_page_naming_it() -> None:
    page = Client().get("/admin/", HTTP_HOST="nobody.localhost", HTTP_ACCEPT=BROWSER_ACCEPT)
    text = page.content.decode()

    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    assert "nobody.localhost" in text
    assert 'href="http://localhost/"' in text or 'href="https://localhost/"' in text


@pytest.mark.django_db
def test_an_unknown_host_names_itself_escaped() -> None:
    page = Client().get("/", HTTP_HOST="x<b>.localhost", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert "<b>" not in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/v1/users", BROWSER_ACCEPT),  # the API answers JSON, whoever asks
        ("/admin/", "application/json"),
        ("/admin/", "*/*"),  # curl
        ("/admin/", ""),
    ],
)
def test_the_api_and_json_clients_on_an_unknown_host_keep_the_envelope(path, accept) -> None:
    response = Client().get(path, HTTP_HOST="nobody.localhost", HTTP_ACCEPT=accept)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_the_sso_providers_page_carries_the_tenants_titles(tenant_a) -> None:
    page = Client().get("/admin/sso/", HTTP_HOST=tenant_a.host)

    assert page.status_code == 200
    assert f"{tenant_a.tenant.name} administration" in page.content.decode()


@pytest.mark.django_db
def test_a_browser_on_a_deactivated_tenants_host_gets_the_page_too(tenant_a) -> None:
    from apps.tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(is_active=False)

    page = Client().get("/admin/", HTTP_HOST=tenant_a.host, HTTP_ACCEPT=BROWSER_ACCEPT)

    assert page.status_code == 404
    assert f"No site is served at {tenant_a.host}" in page.content.decode()
