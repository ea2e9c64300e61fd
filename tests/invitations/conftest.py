from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.organizations.models import Organization
from apps.rbac.models import Role
from tests.accounts.conftest import Api, api_a, api_b, member_a  # noqa: F401
from tests.accounts.factories import make_user
from tests.conftest import ADMIN_PASSWORD
from tests.organizations.factories import node
from tests.rbac.factories import grant_role
from tests.sso.conftest import make_provider, op, sign_in  # noqa: F401

INVITATIONS = "/api/v1/invitations"
ACCEPT = "/api/v1/invitations/accept"
NEW_PASSWORD = "a-brand-new-passphrase-77"


def link_token(message: Any) -> str:
    """The token of the one link in a mail."""
    [token] = re.findall(r"token=([\w-]+)", message.body)
    return str(token)


def mails_to(address: str) -> list[Any]:
    """The mails with a link to `address` (not the welcome mail every new user gets)."""
    return [m for m in mail.outbox if address in m.to and "token=" in m.body]


@pytest.fixture
def owner_token(api_a: Api, tenant_a) -> str:  # noqa: F811
    return str(api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def editors(tenant_a) -> Role:
    with tenant_context(tenant_a.tenant):
        return Role.objects.create(name="Editors", permissions=["users.view", "audit.view"])


@pytest.fixture
def team(tenant_a) -> Organization:
    with tenant_context(tenant_a.tenant):
        return node("Invited Team")


@pytest.fixture
def holder(tenant_a) -> Callable[..., User]:
    """holder("name", ["users.manage", ...], organization=None): a user holding just those."""

    def make(name: str, permissions: list[str], organization: Organization | None = None) -> User:
        with tenant_context(tenant_a.tenant):
            user = make_user(email=f"{name}@alpha.test", username=name)
            grant_role(user, permissions, organization)
            return user

    return make


@pytest.fixture
def invite(api_a: Api, owner_token: str, django_capture_on_commit_callbacks, eager_tasks):  # noqa: F811
    """invite(email, roles=[...], organization_id=None, token=owner): the API's answer, with
    the mail sent (a worker's job, run inline after commit)."""

    def send(email: str, token: str | None = None, **fields: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api_a.call(
                "post", INVITATIONS, {"email": email, **fields}, token=token or owner_token
            )

    return send


# Real processes (a worker mailing through a real SMTP server, the web app), as the jobs
# tests run them: a committed tenant of this package's own, dropped at the end.
from tests.jobs.conftest import jobs_tenant, jobs_web, jobs_worker, smtp  # noqa: E402, F401
