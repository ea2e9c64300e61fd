"""The tokens of mailed links and the mails that carry them (sent by workers, after commit)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django_tenants.utils import get_tenant_model

from apps.core.tenancy import current_schema


def token_new() -> tuple[str, str]:
    """A fresh link token and the SHA-256 that is all we keep of it."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tenant_name() -> str:
    tenant = get_tenant_model().objects.filter(schema_name=current_schema()).first()
    return str(tenant.name) if tenant is not None else ""


def tenant_settings() -> dict[str, Any]:
    """The current tenant's settings (Tenant.settings), read through django-tenants' model so
    the layers below apps.tenants need not import it."""
    found = (
        get_tenant_model()
        .objects.filter(schema_name=current_schema())
        .values_list("settings", flat=True)
        .first()
    )
    return dict(found) if isinstance(found, dict) else {}


def mail(template: str, context: dict[str, Any], *, to: str) -> EmailMultiAlternatives:
    return EmailMultiAlternatives(
        subject=render_to_string(f"{template}_subject.txt", context).strip(),
        body=render_to_string(f"{template}.txt", context),
        to=[to],
    )
