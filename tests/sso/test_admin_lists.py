"""An identity provider's scopes, e-mail domains and redirect URIs in the admin: typed
one a line, saved as JSON lists; a bad line is the field's error and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.sso.models import IdentityProvider
from tests.accounts.factories import make_user
from tests.sso.conftest import CLIENT_REDIRECT

pytestmark = pytest.mark.django_db


def _form_data(page: Any) -> dict[str, Any]:
    """What the change form posts back, as the browser got it."""
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, list):
            data[name] = [str(v) for v in value]
        else:
            data[name] = "on" if value is True else str(value)
    return data


@pytest.fixture
def page_and_client(tenant_a, make_provider) -> tuple[IdentityProvider, Client, str]:
    provider = make_provider(allowed_email_domains=["corp.test"])
    client = Client(raise_request_exception=False)
    with tenant_context(tenant_a.tenant):
        client.force_login(
            make_user(email="boss@alpha.test", username="boss", is_staff=True, is_superuser=True)
        )
    return provider, client, f"/admin/sso/identityprovider/{provider.pk}/change/"


def test_the_lists_are_shown_one_item_a_line(tenant_a, page_and_client) -> None:
    _provider, client, url = page_and_client

    page = client.get(url, HTTP_HOST=tenant_a.host)
    text = page.content.decode()

    assert page.status_code == 200
    assert "\nopenid\nemail\nprofile</textarea>" in text
    assert f"\n{CLIENT_REDIRECT}</textarea>" in text
    assert "\ncorp.test</textarea>" in text


def test_lines_are_saved_as_lists(tenant_a, page_and_client) -> None:
    provider, client, url = page_and_client
    data = _form_data(client.get(url, HTTP_HOST=tenant_a.host))

    saved = client.post(
        url,
        {
            **data,
            "scopes": "openid\nemail\ngroups\n",
            "allowed_email_domains": "Corp.test\nexample.test",
            "redirect_uris": f"{CLIENT_REDIRECT}\n\nhttps://other.example.test/back",
        },
        HTTP_HOST=tenant_a.host,
    )

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    with tenant_context(tenant_a.tenant):
        provider.refresh_from_db()
    assert provider.scopes == ["openid", "email", "groups"]
    assert sorted(provider.allowed_email_domains) == ["corp.test", "example.test"]
    assert provider.redirect_uris == [CLIENT_REDIRECT, "https://other.example.test/back"]


@pytest.mark.parametrize(
    ("field", "lines"),
    [
        ("redirect_uris", f"{CLIENT_REDIRECT}\nnot a url"),
        ("scopes", "openid\nemail profile"),
        ("allowed_email_domains", "corp.test\nsome domain"),
    ],
)
def test_a_bad_line_is_the_fields_error_and_nothing_is_saved(
    tenant_a, page_and_client, field: str, lines: str
) -> None:
    provider, client, url = page_and_client
    data = _form_data(client.get(url, HTTP_HOST=tenant_a.host))

    refused = client.post(url, {**data, field: lines}, HTTP_HOST=tenant_a.host)

    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "Line 2" in " ".join(errors[field])
    with tenant_context(tenant_a.tenant):
        provider.refresh_from_db()
    assert provider.redirect_uris == [CLIENT_REDIRECT]
    assert provider.scopes == ["openid", "email", "profile"]
    assert provider.allowed_email_domains == ["corp.test"]
