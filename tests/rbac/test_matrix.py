"""Every endpoint of a tenant's API, called without and with the permission it declares.

The endpoints come from the URLconf and the permissions from the views
themselves (apps/rbac/endpoints.py), so a new endpoint is covered the moment
it exists, and one without a declaration fails here.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.notifications.models import NotificationBatch
from apps.organizations.models import Membership
from apps.rbac.catalogue import ALL_CODENAMES
from apps.rbac.drf import AUTHENTICATED
from apps.rbac.endpoints import PUBLIC, UNDECLARED, endpoints
from apps.rbac.models import Role, RoleAssignment
from tests.accounts.factories import make_user
from tests.organizations.factories import org_create

TENANT_URLCONF = "platform_site.urls"


def test_every_endpoint_declares_what_it_needs() -> None:
    found = endpoints(TENANT_URLCONF)
    assert len(found) > 20
    undeclared = [(e.method, e.path) for e in found if e.needs == UNDECLARED]
    assert undeclared == []
    for endpoint in found:
        assert endpoint.needs in ALL_CODENAMES | {AUTHENTICATED, PUBLIC}, endpoint
    public = {e.path for e in found if e.needs == PUBLIC}
    assert public <= {
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/refresh",
        "/api/v1/auth/password/reset",
        "/api/v1/auth/password/reset/confirm",
        "/api/v1/auth/email/confirm",
        "/api/v1/info",
        "/api/v1/auth/oidc/exchange",
        "/api/v1/auth/oidc/{provider}/authorize",
        "/api/v1/auth/oidc/{provider}/callback",
        "/api/v1/auth/mfa/verify",  # the sign-in's mfa_token, or a step-up's access token
        "/api/v1/auth/mfa/enrol",  # the sign-in's mfa_token
        "/api/v1/auth/mfa/enrol/confirm",
    }


def test_the_api_docs_list_every_endpoint_with_its_permission() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    missing = [
        f"| {e.method} | `{e.path}` | {e.needs} |"
        for e in endpoints(TENANT_URLCONF)
        if f"| {e.method} | `{e.path}` | {e.needs} |" not in page
    ]
    assert missing == [], (
        "Endpoint table in docs/api.md is stale: python3 run.py manage permissions_table"
    )


@pytest.fixture
def world(tenant_a):
    """Objects for every path parameter, and one user per permission plus one with none."""
    with tenant_context(tenant_a.tenant):
        target = make_user(email="target@alpha.test", username="target")
        org = org_create("Matrix Org")
        child = org_create("Matrix Child", org)
        Membership.objects.create(organization=org, user=target)
        # No permissions: granting or deleting it needs roles.manage alone (no escalation).
        role = Role.objects.create(name="Matrix Role", permissions=[])
        assignment = RoleAssignment.objects.create(user=target, role=role)
        event = AuditEvent.objects.create(action="matrix.test", target_type="user", target_id="1")
        batch = NotificationBatch.objects.create(type="announcement", title="Matrix", audience={})
        holders = {}
        for codename in sorted(ALL_CODENAMES):
            user = make_user(email=f"holder.{codename}@alpha.test", username=f"h-{codename}")
            only = Role.objects.create(name=f"only {codename}", permissions=[codename])
            RoleAssignment.objects.create(user=user, role=only)
            holders[codename] = user.email
        make_user(email="nobody@alpha.test", username="nobody")
        make_user(email="someone@alpha.test", username="someone")
    return {
        "user": target.pk,
        "role": role.pk,
        "assignment": assignment.pk,
        "organization": org.pk,
        "child": child.pk,
        "event": event.pk,
        "batch": str(batch.pk),
        "holders": holders,
    }


def fill(path: str, world: dict) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        before = path[: match.start()]
        if name in ("session_id", "factor_id"):
            return str(uuid.uuid4())
        if name == "batch_id":
            return str(world["batch"])
        if name == "provider_id":
            return "999999"  # a 404 with or without the permission, never a 403
        if name in ("notification_id", "device_id"):
            return "999999"  # the caller's own: none yet, so a 404 (but never a 403)
        if name == "user_id" or (name == "id" and before.endswith("/users/")):
            return str(world["user"])
        if name == "role_id" or before.endswith("/roles/"):
            return str(world["role"])
        if name == "assignment_id":
            return str(world["assignment"])
        if "audit" in before:
            return str(world["event"])
        if "organizations" in before:
            return str(world["organization"])
        raise AssertionError(f"no value for {{{name}}} in {path}: teach the matrix test")

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.mark.django_db
def test_without_the_permission_403_with_it_through(api_a, world, settings) -> None:
    # A fresh sign-in per endpoint: more than the sign-in limit per address allows.
    settings.AUTH_RATE_LIMITS_ENABLED = False
    tokens = {"nobody": api_a.login("nobody@alpha.test")["access_token"]}
    checked = 0
    # Deletes last, so they do not take away what the other calls use.
    for endpoint in sorted(endpoints(TENANT_URLCONF), key=lambda e: e.method == "DELETE"):
        if endpoint.needs == PUBLIC:
            continue
        path = fill(endpoint.path, world)
        method = endpoint.method.lower()
        anonymous = api_a.call(method, path, {})
        assert anonymous.status_code == 401, (endpoint, anonymous.content)
        if endpoint.needs == AUTHENTICATED:
            # A fresh sign-in each: logout-all and password change end the caller's sessions.
            fresh = api_a.login("someone@alpha.test")["access_token"]
            response = api_a.call(method, path, {}, token=fresh)
            assert response.status_code not in (401, 403), (endpoint, response.content)
            continue
        refused = api_a.call(method, path, {}, token=tokens["nobody"])
        assert refused.status_code == 403, (endpoint, refused.content)
        body = refused.json()
        assert body["success"] is False and body["error"]["code"] == "FORBIDDEN"
        assert endpoint.needs in body["error"]["message"]
        if endpoint.needs not in tokens:
            tokens[endpoint.needs] = api_a.login(world["holders"][endpoint.needs])["access_token"]
        allowed = api_a.call(method, path, {}, token=tokens[endpoint.needs])
        assert allowed.status_code not in (401, 403), (endpoint, allowed.content)
        checked += 1
    assert checked >= 12
