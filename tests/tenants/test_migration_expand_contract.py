"""Expand/contract: while tenants are migrated one after another, the release still serving runs
against the new schema. An additive migration (a nullable column and an index on a tenant
table) must leave that code working; a NOT NULL column without a database default does not.

The new schema here is made with raw DDL, as the next release's migration would leave it.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.conftest import Api
from tests.accounts.factories import make_user

USERS = "/api/v1/users"


def expand(schema: str, column: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{schema}".accounts_user ADD COLUMN {column}')
        cursor.execute(
            f'CREATE INDEX accounts_user_nickname_idx ON "{schema}".accounts_user (nickname)'
        )


@pytest.mark.django_db
def test_the_user_api_works_against_a_schema_with_a_new_nullable_column_and_index(
    api: APIClient, tenant_a
) -> None:
    expand(tenant_a.schema, "nickname varchar(64) NULL")
    with tenant_context(tenant_a.tenant):
        staff = make_user(email="staff@alpha.test", username="staffer", is_staff=True)
        RoleAssignment.objects.create(user=staff, role=Role.objects.get(system_key="admin"))
    client = Api(api, tenant_a.host)
    token = client.login("staff@alpha.test")["access_token"]

    created = client.call(
        "post",
        USERS,
        {
            "email": "new@alpha.test",
            "username": "newperson",
            "password": "a-good-long-passphrase",
            "password_confirm": "a-good-long-passphrase",
            "full_name": "New Person",
        },
        token=token,
    )
    listed = client.call("get", USERS, {"search": "newperson"}, token=token)
    me = client.call("get", f"{USERS}/me", token=token)
    updated_me = client.call("patch", f"{USERS}/me", {"full_name": "Staff Member"}, token=token)
    updated = client.call(
        "patch", f"{USERS}/{created.json()['data']['id']}", {"full_name": "Renamed"}, token=token
    )

    assert created.status_code == 201, created.content
    assert listed.status_code == 200
    assert [u["username"] for u in listed.json()["data"]["items"]] == ["newperson"]
    assert me.status_code == 200 and me.json()["data"]["email"] == "staff@alpha.test"
    assert (
        updated_me.status_code == 200 and updated_me.json()["data"]["full_name"] == "Staff Member"
    )
    assert updated.status_code == 200 and updated.json()["data"]["full_name"] == "Renamed"
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT nickname FROM "{tenant_a.schema}".accounts_user WHERE email = %s',  # noqa: S608
            ["new@alpha.test"],
        )
        assert cursor.fetchone() == (None,)  # the old code never wrote the new column


@pytest.mark.django_db
def test_a_not_null_column_without_a_database_default_breaks_the_old_code(tenant_a) -> None:
    # What AddField(default=...) leaves behind: Django fills existing rows through a default it
    # drops at once, so the release still serving cannot insert. Use null=True or db_default.
    expand(tenant_a.schema, "nickname varchar(64) NOT NULL DEFAULT ''")
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{tenant_a.schema}".accounts_user ALTER COLUMN nickname DROP DEFAULT'
        )

    with tenant_context(tenant_a.tenant):
        with pytest.raises(IntegrityError, match="nickname"), transaction.atomic():
            make_user(email="old-code@alpha.test", username="oldcode")
        assert not User.objects.filter(email="old-code@alpha.test").exists()
