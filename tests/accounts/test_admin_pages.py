"""The admin pages tenant owners and operators work in, opened as a browser would (Django's
test client): the tenant owner's pages on the tenant host, the job failures on the public
host as an operator. Each answers 200 and reads as names, never "2: 2 in 1"."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from apps.accounts.models import Session
from apps.audit.models import AuditEvent
from apps.jobs.models import JobFailure
from apps.notifications.models import Delivery
from apps.notifications.notify import notification_send
from apps.organizations.models import Membership
from apps.organizations.services import organization_create
from apps.rbac.models import Role, RoleAssignment
from apps.sso.models import ExternalIdentity, IdentityProvider
from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD, make_user

IDS_ONLY = re.compile(
    r"[\s>“\"](\d+: \d+( in \d+)?|\d+ in \d+|session \d+|[a-z_.]+ to \d+)[\s<”\"]"
)


@pytest.fixture
def tenant_pages(tenant_a, api) -> dict[str, tuple[str, list[str]]]:
    """page -> (path, texts it must show), over rows of every kind."""
    with tenant_context(tenant_a.tenant):
        member = make_user(email="member@alpha.test", username="member", full_name="Mem Ber")
        sales = organization_create(actor=None, name="Sales", type="department", parent_id=None)
        team = organization_create(actor=None, name="Closers", type="team", parent_id=sales.pk)
        role = Role.objects.get(system_key="admin")
        assignment = RoleAssignment.objects.create(user=member, role=role, organization=sales)
        Membership.objects.create(user=member, organization=team, title="Closer")
        provider = IdentityProvider.objects.create(
            slug="corp", name="Corp IdP", issuer="https://idp.example.test", client_id="c"
        )
        ExternalIdentity.objects.create(
            provider=provider, issuer=provider.issuer, subject="s-1", user=member
        )
        notification = notification_send(user=member, type="announcement", title="All hands")
        assert notification is not None
        delivery = Delivery.objects.filter(notification=notification).first()
        assert delivery is not None
        audit = AuditEvent.objects.create(
            action="user.updated",
            target_type="user",
            target_id=str(member.pk),
            changes={"full_name": ["M", "Mem Ber"]},
        )
    Api(api, tenant_a.host).login("member@alpha.test", PASSWORD)
    with tenant_context(tenant_a.tenant):
        session = Session.objects.get(user=member)
    user_page = f"/admin/accounts/user/{member.pk}/change/"
    return {
        "users": ("/admin/accounts/user/", ["member@alpha.test"]),
        "user add": ("/admin/accounts/user/add/", ['name="password1"']),
        "user": (user_page, ["member@alpha.test", "Sales", "Closers", "admin"]),
        "sessions": ("/admin/accounts/session/", ["member@alpha.test"]),
        "session": (f"/admin/accounts/session/{session.pk}/change/", ["member@alpha.test"]),
        "roles": ("/admin/rbac/role/", ["admin", "owner"]),
        "role add": ("/admin/rbac/role/add/", ['name="permissions"']),
        "role": (f"/admin/rbac/role/{role.pk}/change/", ["member@alpha.test", "Sales"]),
        "assignments": ("/admin/rbac/roleassignment/", ["member@alpha.test", "Sales"]),
        "assignment add": ("/admin/rbac/roleassignment/add/", ["data-ajax--url"]),
        "assignment": (
            f"/admin/rbac/roleassignment/{assignment.pk}/change/",
            ["member@alpha.test: admin in Sales"],
        ),
        "organizations": ("/admin/organizations/organization/", ["— Closers"]),
        "organization add": ("/admin/organizations/organization/add/", ["— Closers"]),
        "organization": (
            f"/admin/organizations/organization/{team.pk}/change/",
            ["member@alpha.test", "Closer"],
        ),
        "audit events": ("/admin/audit/auditevent/", ["user.updated"]),
        "audit event": (
            f"/admin/audit/auditevent/{audit.pk}/change/",
            ["<th>before</th>", f'href="{user_page}"'],
        ),
        "identity providers": ("/admin/sso/identityprovider/", ["Corp IdP"]),
        "identity provider add": (
            "/admin/sso/identityprovider/add/",
            ['name="client_secret"', 'data-field-name="break_glass_users"'],
        ),
        "identity provider": (f"/admin/sso/identityprovider/{provider.pk}/change/", ["Corp IdP"]),
        "external identities": ("/admin/sso/externalidentity/", ["member@alpha.test"]),
        "notifications": ("/admin/notifications/notification/", ["member@alpha.test"]),
        "notification": (
            f"/admin/notifications/notification/{notification.pk}/change/",
            ["announcement to member@alpha.test"],
        ),
        "deliveries": ("/admin/notifications/delivery/", ["announcement to member@alpha.test"]),
        "delivery": (f"/admin/notifications/delivery/{delivery.pk}/change/", ["announcement"]),
        "preferences": ("/admin/notifications/preference/", []),
        "preference add": ("/admin/notifications/preference/add/", ["data-ajax--url"]),
        "batches": ("/admin/notifications/notificationbatch/", []),
    }


@pytest.mark.django_db
def test_the_tenant_owner_opens_every_page(tenant_a, tenant_pages) -> None:
    client = Client()
    with tenant_context(tenant_a.tenant):
        client.force_login(tenant_a.admin())
    for name, (path, texts) in tenant_pages.items():
        response = client.get(path, HTTP_HOST=tenant_a.host)
        assert response.status_code == 200, (name, path, response.status_code)
        html = response.content.decode()
        for text in texts:
            assert text in html, (name, text)
        assert not IDS_ONLY.search(html), (name, IDS_ONLY.search(html))


@pytest.mark.django_db
def test_an_operator_opens_the_job_failures_and_the_operators(operator) -> None:
    failure = JobFailure.objects.create(
        task_name="notifications.deliver", task_id="t-1", tenant_schema="alpha",
        exception_type="SMTPException", exception_message="refused",
    )  # fmt: skip
    client = Client()
    client.force_login(operator)
    for path, text in (
        ("/admin/jobs/jobfailure/", "notifications.deliver"),
        (f"/admin/jobs/jobfailure/{failure.pk}/change/", "refused"),
        ("/admin/jobs/outboxevent/", "outbox"),
        ("/admin/accounts/user/", operator.email),
        (f"/admin/accounts/user/{operator.pk}/change/", "active sessions"),
        ("/admin/audit/auditevent/", "audit"),
    ):
        response = client.get(path, HTTP_HOST="localhost")
        assert response.status_code == 200, (path, response.status_code)
        assert text in response.content.decode().lower() or text in response.content.decode()
