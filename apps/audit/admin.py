"""The audit log in the tenant's admin: to read and search, never to write.

Rows come only from the services that make the changes; here nobody, not even
a superuser, can add, edit or delete one (there is no bulk action either).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.admin_bases import ReadOnlyModelAdmin
from apps.core.admin_site import model_lives_in_current_schema

_FIELDS = (
    "occurred_at", "action", "target", "actor_link", "actor_email", "changes_table",
    "ip_address", "request_id",
)  # fmt: skip


def _admin_model(target_type: str) -> type[Model] | None:
    """The model an audit row's target_type names (its model_name), if this host's admin
    has a page for it."""
    for model in admin.site._registry:
        if model._meta.model_name == target_type and model_lives_in_current_schema(model):
            return model
    return None


def _change_url(model: type[Model], pk: Any) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    except NoReverseMatch:  # e.g. a target id that is not a valid key for the model
        return None


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes_as_table(changes: Any) -> str:
    """{field: [before, after]} as field / before / after; any other mapping as
    field / value; anything else as its JSON."""
    if not changes:
        return "-"
    if not isinstance(changes, dict):
        return format_html("<code>{}</code>", _shown(changes))
    pairs = all(isinstance(v, list) and len(v) == 2 for v in changes.values())
    if pairs:
        head = mark_safe("<tr><th>field</th><th>before</th><th>after</th></tr>")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((k, _shown(v[0]), _shown(v[1])) for k, v in sorted(changes.items())),
        )
    else:
        head = mark_safe("<tr><th>field</th><th>value</th></tr>")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td></tr>",
            ((k, _shown(v)) for k, v in sorted(changes.items())),
        )
    return format_html("<table><thead>{}</thead><tbody>{}</tbody></table>", head, rows)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    # Reading needs audit.view, as the API does (apps.rbac.backends), or a superuser.
    list_display = [
        "occurred_at", "action", "target_type", "target", "actor_email", "ip_address",
        "request_id",
    ]  # fmt: skip
    list_filter = ["action", "target_type"]
    date_hierarchy = "occurred_at"
    search_fields = ["actor_email", "target_id", "request_id"]
    fields = _FIELDS
    readonly_fields = _FIELDS
    ordering = ["-occurred_at", "-id"]
    actions = None  # not even Django's "delete selected"

    @admin.display(description="target")
    def target(self, event: AuditEvent) -> str:
        """The target's id, linked to its admin page when this host has one (a deleted
        target's link ends at Django's "does not exist" message)."""
        text = f"{event.target_type} {event.target_id}".strip()
        model = _admin_model(event.target_type) if event.target_id else None
        url = _change_url(model, event.target_id) if model is not None else None
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    @admin.display(description="actor")
    def actor_link(self, event: AuditEvent) -> str:
        if event.actor_id is None:
            return event.actor_email or "the system"

        url = _change_url(User, event.actor_id)
        label = event.actor_email or f"user {event.actor_id}"
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description="changes")
    def changes_table(self, event: AuditEvent) -> str:
        return changes_as_table(event.changes)
