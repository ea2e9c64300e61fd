"""The accounts app's tasks: sending a reset link, two periodic jobs run per tenant
(fanned out by core.jobs_fan_out; see TENANT_JOBS in apps/jobs/periodic.py), and the
same cleanup for the public schema, where platform operators sign in."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django_tenants.utils import get_public_schema_name, schema_context

from apps.accounts.services.email_change import email_change_mails_send, email_changed_notice_send
from apps.accounts.services.passwords import password_reset_send
from apps.accounts.services.sessions import auth_records_cleanup
from apps.accounts.services.user_sync import user_data_sync
from apps.accounts.services.users import users_purge
from apps.jobs.bases import tenant_task
from apps.jobs.events import events_prune
from apps.mfa.services.factors import mfa_records_cleanup
from apps.sso.services.signin import sso_records_cleanup


@tenant_task(
    name="accounts.password_reset_send",
    allows_public=True,  # platform operators reset their passwords on the public host
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def password_reset_send_task(event_id: str, email: str) -> None:
    password_reset_send(request_event_id=event_id, email=email)


@tenant_task(
    name="accounts.email_change_mails_send",
    allows_public=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def email_change_mails_send_task(user_id: int, new_email: str) -> bool:
    """The confirmation link to the new address and the notice to the old one. A retry after
    a partial failure may send one of them twice; a newer request voids this one."""
    return email_change_mails_send(user_id=user_id, new_email=new_email)


@tenant_task(
    name="accounts.email_changed_notice_send",
    allows_public=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=5,
)
def email_changed_notice_send_task(user_id: int, old_email: str, new_email: str) -> None:
    email_changed_notice_send(user_id=user_id, old_email=old_email, new_email=new_email)


@tenant_task(name="accounts.cleanup_expired_sessions")
def cleanup_expired_sessions_task() -> dict[str, int]:
    """Ended sessions, spent or expired reset tokens, users past the retention, old event rows,
    unconfirmed second factors and expired MFA challenges, used or expired single sign-on
    states and one-time codes."""
    counts = _records_cleanup()
    counts.update({f"sso_{name}": n for name, n in sso_records_cleanup().items()})
    return counts


@shared_task(name="accounts.cleanup_public", ignore_result=True)
def cleanup_public_task() -> dict[str, int]:
    """The daily cleanup of the public schema: platform operators' ended sessions and spent
    reset tokens, operators past the retention, old event rows (single sign-on is per
    tenant only). The per-tenant job never runs there."""
    with schema_context(get_public_schema_name()):
        return _records_cleanup()


def _records_cleanup() -> dict[str, int]:
    counts = auth_records_cleanup()
    with transaction.atomic():
        counts["users_purged"] = users_purge(older_than_days=settings.USER_RETENTION_DAYS)
    counts.update(events_prune(older_than_days=settings.JOBS_EVENT_RETENTION_DAYS))
    counts.update(mfa_records_cleanup())  # unconfirmed factors, expired sign-in challenges
    return counts


@tenant_task(name="accounts.sync_user_data")
def sync_user_data_task() -> dict[str, int]:
    """Recompute what derives from users (cached auth state and grants); report what changed."""
    return user_data_sync().as_dict()
