"""Mailing invitation and verification links (after the request that asked committed)."""

from __future__ import annotations

from smtplib import SMTPException

from apps.invitations.services import invitation_send
from apps.invitations.signup import verification_send
from apps.jobs.bases import tenant_task


@tenant_task(
    name="invitations.invitation_send",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def invitation_send_task(invitation_id: int, send_id: str) -> bool:
    return invitation_send(invitation_id=invitation_id, send_id=send_id)


@tenant_task(
    name="invitations.verification_send",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def verification_send_task(verification_id: int) -> bool:
    return verification_send(verification_id=verification_id)
