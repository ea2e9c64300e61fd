"""Identity providers and linked identities in the admin: written through the sso
services, so each change has its audit row (the secret only marked) and checks."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.sso.models import ExternalIdentity, IdentityProvider
from tests.accounts.factories import make_user

pytestmark = pytest.mark.django_db
BASE = "/admin/sso"


def _form(client: Client, host: str, op, **overrides):
    """The add form's fields as a browser posts them; list fields in the form's own text
    format (JSON, or one item a line), whichever field the form uses."""
    fields = (
        client.get(f"{BASE}/identityprovider/add/", HTTP_HOST=host).context["adminform"].form.fields
    )
    lists = {
        "scopes": ["openid", "email"],
        "allowed_email_domains": [],
        "redirect_uris": ["https://app.example.test/sso/done"],
        **{k: v for k, v in overrides.items() if isinstance(v, list)},
    }
    return {
        "slug": "corp",
        "name": "Corp IdP",
        "issuer": op.issuer,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "claim_email": "email",
        "claim_name": "name",
        "claim_username": "preferred_username",
        "enabled": "on",
        **{name: fields[name].prepare_value(value) for name, value in lists.items()},
        **{k: v for k, v in overrides.items() if not isinstance(v, list)},
    }


def test_a_provider_added_changed_and_deleted_in_the_admin_is_audited(tenant_a, op) -> None:
    client = tenant_a.admin_client()
    host = {"HTTP_HOST": tenant_a.host}
    added = client.post(f"{BASE}/identityprovider/add/", _form(client, tenant_a.host, op), **host)
    assert added.status_code == 302, added.content.decode()[:3000]
    with tenant_context(tenant_a.tenant):
        provider = IdentityProvider.objects.get(slug="corp")
        assert provider.metadata  # discovery, as the service fetches it
        created = AuditEvent.objects.get(action="identity_provider.created")
        assert op.client_secret not in json.dumps(created.changes)

    changed = client.post(
        f"{BASE}/identityprovider/{provider.pk}/change/",
        _form(client, tenant_a.host, op, name="Corp SSO", client_secret="a-new-secret"),
        **host,
    )
    assert changed.status_code == 302, changed.content.decode()[:3000]
    with tenant_context(tenant_a.tenant):
        updated = AuditEvent.objects.get(action="identity_provider.updated")
        assert updated.changes["name"] == "Corp SSO"
        assert updated.changes["client_secret"] == "(changed)"

    deleted = client.post(f"{BASE}/identityprovider/{provider.pk}/delete/", {"post": "yes"}, **host)
    assert deleted.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.exists()
        assert AuditEvent.objects.filter(action="identity_provider.deleted").exists()


def test_a_refused_redirect_uri_is_shown_not_a_500(tenant_a, op) -> None:
    client = tenant_a.admin_client()
    response = client.post(
        f"{BASE}/identityprovider/add/",
        _form(client, tenant_a.host, op, redirect_uris=["http://evil.example.test/"]),
        HTTP_HOST=tenant_a.host,
        follow=True,
    )
    assert response.status_code == 200
    assert b"Not saved" in response.content
    with tenant_context(tenant_a.tenant):
        assert not IdentityProvider.objects.exists()


def test_unlinking_an_identity_is_audited(tenant_a, make_provider) -> None:
    provider = make_provider()
    with tenant_context(tenant_a.tenant):
        user = make_user(email="pat@corp.test", username="pat")
        identity = ExternalIdentity.objects.create(
            provider=provider, issuer=provider.issuer, subject="op-user-1", user=user
        )
    client = tenant_a.admin_client()
    host = {"HTTP_HOST": tenant_a.host}
    assert client.get(f"{BASE}/externalidentity/{identity.pk}/change/", **host).status_code == 200
    response = client.post(
        f"{BASE}/externalidentity/{identity.pk}/delete/", {"post": "yes"}, **host
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.tenant):
        assert not ExternalIdentity.objects.filter(pk=identity.pk).exists()
        row = AuditEvent.objects.get(action="external_identity.unlinked")
        assert row.changes == {"provider": "corp", "subject": "op-user-1", "user_id": user.pk}
