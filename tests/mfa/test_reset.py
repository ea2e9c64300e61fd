"""A user manager removes the factors of a user who lost them."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.jobs.models import OutboxEvent
from apps.mfa.models import Factor, RecoveryCode
from tests.conftest import ADMIN_PASSWORD
from tests.mfa.flows import enrol_totp, login

pytestmark = pytest.mark.django_db


def test_a_user_manager_resets_a_members_factors(
    api_a, member_a, staff_a, tenant_a, totp_clock
) -> None:
    enrol_totp(api_a, api_a.login(member_a.email)["access_token"], totp_clock)
    assert login(api_a, member_a.email)["mfa_required"] is True

    staff = api_a.login(staff_a.email)["access_token"]
    reset = api_a.call("delete", f"/api/v1/users/{member_a.pk}/mfa", token=staff)
    assert reset.status_code == 204, reset.content
    assert "access_token" in login(api_a, member_a.email)
    with tenant_context(tenant_a.tenant):
        assert not Factor.objects.filter(user=member_a).exists()
        assert not RecoveryCode.objects.filter(user=member_a).exists()
        audit = AuditEvent.objects.get(action="mfa.reset")
        assert audit.actor_id == staff_a.pk and audit.target_id == str(member_a.pk)
        event = OutboxEvent.objects.filter(event_type="auth.mfa_factor_removed").latest(
            "occurred_at"
        )
        assert event.data["kind"] == "all"


def test_nobody_resets_an_owner_they_do_not_outrank_nor_themselves(
    api_a, member_a, staff_a, tenant_a, totp_clock
) -> None:
    owner = tenant_a.admin()
    owner_token = api_a.login(tenant_a.admin_email, ADMIN_PASSWORD)["access_token"]
    enrol_totp(api_a, owner_token, totp_clock)
    staff = api_a.login(staff_a.email)["access_token"]
    refused = api_a.call("delete", f"/api/v1/users/{owner.pk}/mfa", token=staff)
    assert refused.status_code == 403
    plain = api_a.login(member_a.email)["access_token"]
    assert api_a.call("delete", f"/api/v1/users/{owner.pk}/mfa", token=plain).status_code == 403
    own = api_a.call("delete", f"/api/v1/users/{staff_a.pk}/mfa", token=staff)
    assert own.status_code == 422
    with tenant_context(tenant_a.tenant):
        assert Factor.objects.filter(user=owner).count() == 1
