from __future__ import annotations

from smtplib import SMTPException

from apps.core.tasks import tenant_task


@tenant_task(
    name="accounts.password_reset_send",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def password_reset_send_task(event_id: str, email: str) -> None:
    from apps.accounts.services.passwords import password_reset_send

    password_reset_send(request_event_id=event_id, email=email)
