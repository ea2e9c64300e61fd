"""Tenants are managed from the public schema: the guard the services that create, delete
and restore them start with, and the operators' audit log they write there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_tenants.utils import get_public_schema_name, schema_context

from apps.audit.services import audit_record
from apps.core.tenancy import current_schema


def tenant_audit(action: str, tenant_id: int, changes: Mapping[str, Any]) -> None:
    """One audit row about a tenant in the public schema, in the caller's transaction: the
    operators' log. Who did it comes from the request (an operator on the public host; on
    a tenant's host, by address only: that user is not a user of the public schema)."""
    with schema_context(get_public_schema_name()):
        audit_record(action=action, target_type="tenant", target_id=tenant_id, changes=changes)


def require_public_schema() -> None:
    if current_schema() != get_public_schema_name():
        raise RuntimeError("Tenants are created and deleted from the public schema.")
