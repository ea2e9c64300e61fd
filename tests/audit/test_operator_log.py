"""The operators' log: every change to a tenant leaves a row in the public schema, read on
the public host at /api/v1/audit-events (platform operators) and in the public admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection
from tests.audit.conftest import AUDIT, error
from tests.conftest import ADMIN_PASSWORD

PUBLIC = "localhost"


def _provision(client: APIClient, slug: str) -> int:
    response = client.post(
        "/api/v1/tenants",
        {"name": slug.title(), "slug": slug, "admin_email": f"boss@{slug}.test"},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    assert response.status_code == 201, response.content
    return int(response.json()["data"]["tenant"]["id"])


def _log(client: APIClient, **params: str) -> list[dict]:
    response = client.get(AUDIT, params, HTTP_HOST=PUBLIC)
    assert response.status_code == 200, response.content
    return list(response.json()["data"]["items"])


@pytest.mark.django_db
def test_every_tenant_change_by_an_operator_is_in_the_public_log(
    operator_api: APIClient, operator: User
) -> None:
    globex = _provision(operator_api, "globex")
    hooli = _provision(operator_api, "hooli")
    url = f"/api/v1/tenants/{globex}"
    operator_api.patch(url, {"name": "Globex Corp"}, format="json", HTTP_HOST=PUBLIC)
    operator_api.patch(url, {"is_active": False}, format="json", HTTP_HOST=PUBLIC)
    operator_api.patch(url, {"is_active": True}, format="json", HTTP_HOST=PUBLIC)
    operator_api.delete(url, HTTP_HOST=PUBLIC)
    operator_api.post(f"{url}/restore", HTTP_HOST=PUBLIC)
    operator_api.delete(f"/api/v1/tenants/{hooli}?now=true&confirm=hooli", HTTP_HOST=PUBLIC)

    items = [
        item
        for item in _log(operator_api, action_prefix="tenant.", page_size="100")
        if item["target_id"] in (str(globex), str(hooli))  # not the session's own tenants
    ]

    assert [(i["action"], i["target_id"]) for i in reversed(items)] == [
        ("tenant.created", str(globex)),
        ("tenant.created", str(hooli)),
        ("tenant.updated", str(globex)),
        ("tenant.deactivated", str(globex)),
        ("tenant.activated", str(globex)),
        ("tenant.deleted", str(globex)),
        ("tenant.restored", str(globex)),
        ("tenant.deleted", str(hooli)),
        ("tenant.purged", str(hooli)),
    ]
    assert {(i["actor_id"], i["actor_email"], i["target_type"]) for i in items} == {
        (operator.pk, operator.email, "tenant")
    }
    renamed = next(i for i in items if i["action"] == "tenant.updated")
    assert renamed["changes"] == {"name": ["Globex", "Globex Corp"]}
    created = items[-1]
    assert created["changes"]["slug"] == "globex" and created["request_id"].startswith("req_")
    # One row, by id, the same as listed.
    one = operator_api.get(f"{AUDIT}/{renamed['id']}", HTTP_HOST=PUBLIC)
    assert one.status_code == 200 and one.json()["data"] == renamed
    # The tenant's own log holds none of these (only its users' changes).
    tenant_connection().set_schema_to_public()
    from apps.tenants.models import Tenant

    with tenant_context(Tenant.objects.get(pk=globex)):
        assert not AuditEvent.objects.filter(action__startswith="tenant.").exists()


@pytest.mark.django_db
def test_a_change_by_the_tenants_owners_is_in_both_logs(
    operator_api: APIClient, api: APIClient, tenant_a
) -> None:
    login = api.post(
        "/api/v1/auth/login",
        {"email": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=tenant_a.host,
    )
    token = login.json()["data"]["access_token"]
    response = api.patch(
        "/api/v1/tenant",
        {"name": "Alpha Renamed"},
        format="json",
        HTTP_HOST=tenant_a.host,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content

    public = _log(operator_api, action="tenant.updated", target_id=str(tenant_a.tenant.pk))
    assert len(public) == 1
    # Not a user of the public schema: named by address only.
    assert public[0]["actor_id"] is None and public[0]["actor_email"] == tenant_a.admin_email
    with tenant_context(tenant_a.tenant):
        own = AuditEvent.objects.get(action="tenant.updated")
        assert own.actor_id is not None and own.changes == public[0]["changes"]


@pytest.mark.django_db
def test_the_public_log_takes_the_tenant_logs_filters(operator_api: APIClient) -> None:
    globex = _provision(operator_api, "globex")
    _provision(operator_api, "hooli")

    only_globex = _log(operator_api, target_type="tenant", target_id=str(globex))
    assert [i["action"] for i in only_globex] == ["tenant.created"]
    assert _log(operator_api, action="tenant.purged") == []
    bad = operator_api.get(AUDIT, {"since": "yesterday"}, HTTP_HOST=PUBLIC)
    assert error(bad, 422)["details"].keys() == {"since"}
    unknown = operator_api.get(AUDIT, {"colour": "red"}, HTTP_HOST=PUBLIC)
    assert error(unknown, 422)["code"] == "VALIDATION_ERROR"


@pytest.mark.django_db
def test_the_public_log_is_for_operators_only_and_read_only(
    api: APIClient, operator_api: APIClient, tenant_a
) -> None:
    assert error(api.get(AUDIT, HTTP_HOST=PUBLIC), 401)["code"] == "UNAUTHORIZED"
    # A public user who is not staff.
    tenant_connection().set_schema_to_public()
    User.objects.create_user("someone@localhost", ADMIN_PASSWORD)
    login = api.post(
        "/api/v1/auth/login",
        {"email": "someone@localhost", "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=PUBLIC,
    )
    token = login.json()["data"]["access_token"]
    refused = api.get(AUDIT, HTTP_HOST=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert error(refused, 403)["code"] == "FORBIDDEN"
    assert error(api.get(f"{AUDIT}/1", HTTP_HOST=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {token}"), 403)
    # A tenant's token is not an operator's.
    owner = api.post(
        "/api/v1/auth/login",
        {"email": tenant_a.admin_email, "password": ADMIN_PASSWORD},
        format="json",
        HTTP_HOST=tenant_a.host,
    ).json()["data"]["access_token"]
    assert api.get(AUDIT, HTTP_HOST=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {owner}").status_code == 401
    # No writes, for anyone.
    for method in ("post", "put", "patch", "delete"):
        response = getattr(operator_api, method)(f"{AUDIT}/1", {}, format="json", HTTP_HOST=PUBLIC)
        assert error(response, 405)["code"] == "METHOD_NOT_ALLOWED"
    assert error(operator_api.get(f"{AUDIT}/999999", HTTP_HOST=PUBLIC), 404)["code"] == "NOT_FOUND"


@pytest.mark.django_db
def test_the_public_admin_shows_the_operators_log(operator: User, operator_api: APIClient) -> None:
    globex = _provision(operator_api, "globex")
    client = Client()
    client.force_login(operator)

    listing = client.get("/admin/audit/auditevent/", {"action": "tenant.created"}, HTTP_HOST=PUBLIC)

    assert listing.status_code == 200
    assert b"tenant.created" in listing.content
    tenant_connection().set_schema_to_public()
    row = AuditEvent.objects.get(action="tenant.created", target_id=str(globex))
    detail = client.get(f"/admin/audit/auditevent/{row.pk}/change/", HTTP_HOST=PUBLIC)
    assert detail.status_code == 200 and b"globex" in detail.content
