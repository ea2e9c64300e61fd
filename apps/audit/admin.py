"""The audit log in the tenant's admin: to read and search, never to write.

Rows come only from the services that make the changes; here nobody, not even
a superuser, can add, edit or delete one (there is no bulk action either).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent

_FIELDS = (
    "occurred_at", "action", "target_type", "target_id", "actor", "actor_email", "changes",
    "ip_address", "request_id",
)  # fmt: skip


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = [
        "occurred_at", "action", "target_type", "target_id", "actor_email", "ip_address",
        "request_id",
    ]  # fmt: skip
    list_filter = ["action", "target_type"]
    date_hierarchy = "occurred_at"
    search_fields = ["actor_email", "target_id", "request_id"]
    fields = _FIELDS
    readonly_fields = _FIELDS
    ordering = ["-occurred_at", "-id"]
    actions = None  # not even Django's "delete selected"

    # Reading needs audit.view, as the API does (apps.rbac.backends), or a superuser.

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
