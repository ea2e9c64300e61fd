from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin[OutboxEvent]):
    """Read-only: events are facts; the relay, not a person, dispatches them."""

    list_display = ["event_type", "event_id", "source", "occurred_at", "dispatched_at", "attempts"]
    list_filter = ["event_type", ("dispatched_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "event_type"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
