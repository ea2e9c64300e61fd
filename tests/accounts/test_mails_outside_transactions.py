"""The accounts mails (password reset, e-mail change) are sent with no transaction open:
a provider call never holds one. The test's own transaction is the baseline."""

from __future__ import annotations

import smtplib
import uuid

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django_tenants.utils import tenant_context

from apps.accounts.models import PasswordResetToken

DEPTHS: list[int] = []


class DepthRecordingBackend(LocmemBackend):
    """Records how many atomic blocks are open on the connection at each send."""

    def send_messages(self, messages):
        DEPTHS.append(len(connection.atomic_blocks))
        return super().send_messages(messages)


class FailingBackend(LocmemBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("gone")


@pytest.fixture
def depth_backend(settings) -> int:
    settings.EMAIL_BACKEND = f"{__name__}.DepthRecordingBackend"
    DEPTHS.clear()
    return len(connection.atomic_blocks)


@pytest.mark.django_db
def test_the_reset_link_is_mailed_after_its_token_commits(member_a, tenant_a, depth_backend):
    from apps.accounts.services.passwords import password_reset_send

    with tenant_context(tenant_a.tenant):
        assert password_reset_send(request_event_id=str(uuid.uuid4()), email=member_a.email)
    assert DEPTHS == [depth_backend]
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_reset_mail_that_fails_leaves_no_token_and_raises_for_the_retry(
    member_a, tenant_a, settings
):
    from apps.accounts.services.passwords import password_reset_send

    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    event_id = str(uuid.uuid4())
    with tenant_context(tenant_a.tenant):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            password_reset_send(request_event_id=event_id, email=member_a.email)
        assert not PasswordResetToken.objects.filter(request_event_id=event_id).exists()
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        assert password_reset_send(request_event_id=event_id, email=member_a.email) is True
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_email_change_mails_are_sent_outside_a_transaction(member_a, tenant_a, depth_backend):
    from apps.accounts.services.email_change import (
        email_change_mails_send,
        email_change_request,
        email_changed_notice_send,
    )

    with tenant_context(tenant_a.tenant):
        email_change_request(user=member_a, new_email="new@alpha.test")
        assert email_change_mails_send(user_id=member_a.pk, new_email="new@alpha.test")
        email_changed_notice_send(
            user_id=member_a.pk, old_email=member_a.email, new_email="new@alpha.test"
        )
    assert DEPTHS == [depth_backend] * 3
