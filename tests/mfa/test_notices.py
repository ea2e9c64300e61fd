"""Audit rows and the security notices (in-app and e-mail) of every MFA change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.tasks import cleanup_expired_sessions_task
from apps.audit.models import AuditEvent
from apps.mfa.models import Factor, MfaChallenge
from apps.notifications.models import Notification
from tests.mfa.conftest import FACTORS
from tests.mfa.flows import enrol_totp, login, stepped_up, verify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def _notices(tenant_a, user) -> list[str]:
    with tenant_context(tenant_a.tenant):
        return sorted(Notification.objects.filter(recipient=user).values_list("type", flat=True))


def test_every_change_is_audited_and_notified(
    api_a, member_a, tenant_a, totp_clock, django_capture_on_commit_callbacks
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = enrol_totp(api_a, token, totp_clock)
    assert _notices(tenant_a, member_a) == ["security.mfa_factor_added"]
    [added] = [m for m in mail.outbox if m.to == [member_a.email]]
    assert "second factor was added" in added.subject
    assert enrolled.secret not in added.body

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):  # three wrong answers: one notice
            verify(api_a, login(api_a, member_a.email)["mfa_token"], code="000000")
        answer = verify(
            api_a,
            login(api_a, member_a.email)["mfa_token"],
            "recovery_code",
            code=enrolled.recovery_codes[0],
        )
        token = answer.json()["data"]["access_token"]
        api_a.call("post", "/api/v1/auth/mfa/recovery-codes", token=token)
        api_a.call("delete", f"{FACTORS}/{enrolled.factor_id}", token=token)

    assert _notices(tenant_a, member_a) == [
        "security.mfa_factor_added",
        "security.mfa_factor_removed",
        "security.mfa_failed",
        "security.mfa_recovery_code_used",
        "security.mfa_recovery_codes_regenerated",
    ]
    subjects = [m.subject for m in mail.outbox if m.to == [member_a.email]]
    assert len(subjects) == 5 and any("wrong second factor" in s for s in subjects)
    for message in mail.outbox:
        for code in enrolled.recovery_codes:
            assert code not in message.body
    with tenant_context(tenant_a.tenant):
        actions = sorted(
            AuditEvent.objects.filter(action__startswith="mfa.").values_list("action", flat=True)
        )
        notice = Notification.objects.get(recipient=member_a, type="security.mfa_factor_added")
        assert notice.is_security is True
    assert actions == [
        "mfa.factor_confirmed",
        "mfa.factor_enrolled",
        "mfa.factor_removed",
        "mfa.recovery_code_used",
        "mfa.recovery_codes_regenerated",
        "mfa.verification_failed",
        "mfa.verification_failed",
        "mfa.verification_failed",
    ]


def test_the_daily_cleanup_drops_unconfirmed_factors_and_expired_challenges(
    api_a, member_a, tenant_a, totp_clock
) -> None:
    token = api_a.login(member_a.email)["access_token"]
    phone = enrol_totp(api_a, token, totp_clock)
    totp_clock.advance(30)
    token = stepped_up(api_a, token, code=totp_clock.code(phone.secret))
    pending = api_a.call("post", FACTORS, {"type": "totp", "name": "Left"}, token=token)
    assert pending.status_code == 201, pending.content
    login(api_a, member_a.email)
    with tenant_context(tenant_a.tenant):
        Factor.objects.filter(pk=pending.json()["data"]["id"]).update(
            created_at=timezone.now() - timedelta(days=2)
        )
        MfaChallenge.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
        counts = cleanup_expired_sessions_task()
        assert counts["mfa_factors"] == 1 and counts["mfa_challenges"] == 1
        assert list(Factor.objects.values_list("name", flat=True)) == ["Phone"]
