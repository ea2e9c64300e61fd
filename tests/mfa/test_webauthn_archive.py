"""A tenant's security keys survive its export and import (binary columns included), and
sign in on the new tenant's host when the RP id is a parent domain of both hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from apps.core.tenancy import tenant_connection
from apps.mfa.models import Factor
from apps.tenants import exports, imports
from tests.accounts.conftest import Api
from tests.mfa.flows import claims, login, verify
from tests.mfa.test_webauthn_api import enrol_key, origin, sign_in_options

pytestmark = pytest.mark.django_db


def test_a_key_signs_in_on_the_imported_tenant(
    settings, tmp_path: Path, api, api_a, member_a, tenant_a
) -> None:
    settings.TENANT_EXPORT_DIR = tmp_path
    settings.MFA_WEBAUTHN_RP_ID = "localhost"  # the parent of both tenants' hosts
    enrolled = enrol_key(api_a, api_a.login(member_a.email)["access_token"])
    with tenant_context(tenant_a.tenant):
        before = Factor.objects.get(pk=enrolled.factor_id)

    tenant_connection().set_schema_to_public()
    archive = exports.tenant_export(
        tenant=tenant_a.tenant, destination=tmp_path / "a.zip", actor=None
    )
    copy = imports.tenant_import(archive_path=archive.path, slug="keycopy").tenant
    with tenant_context(copy):
        after = Factor.objects.get(pk=enrolled.factor_id)
        assert bytes(after.credential_id or b"") == bytes(before.credential_id or b"")
        assert bytes(after.public_key or b"") == bytes(before.public_key or b"")
        assert after.sign_count == before.sign_count and after.transports == before.transports

    there = Api(api, "keycopy.localhost")
    pending = login(there, member_a.email)
    options = sign_in_options(there, pending["mfa_token"])
    answer = verify(
        there, pending["mfa_token"], "webauthn", credential=enrolled.key.get(options, origin(there))
    )
    assert answer.status_code == 200, answer.content
    assert claims(answer.json()["data"]["access_token"])["amr"] == ["pwd", "hwk"]
