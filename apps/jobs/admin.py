from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin_bases import ReadOnlyModelAdmin
from apps.core.tenancy import in_public_schema
from apps.jobs.models import JobFailure, OutboxEvent
from apps.jobs.retries import job_failure_retry


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyModelAdmin):
    """Read-only: events are facts; the relay, not a person, dispatches them."""

    list_display = ["event_type", "event_id", "source", "occurred_at", "dispatched_at", "attempts"]
    list_filter = ["event_type", ("dispatched_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "event_type"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]


@admin.register(JobFailure)
class JobFailureAdmin(admin.ModelAdmin[JobFailure]):
    """Tasks that failed for good, across tenants: read-only, with a retry action.

    Rows live in the public schema, so only the platform's own admin lists them.
    """

    list_display = [
        "task_name",
        "tenant_schema",
        "exception_type",
        "attempts",
        "last_failed_at",
        "retried_at",
    ]
    list_filter = ["task_name", "tenant_schema", ("retried_at", admin.EmptyFieldListFilter)]
    search_fields = ["task_name", "task_id", "tenant_schema", "exception_message"]
    readonly_fields = [f.name for f in JobFailure._meta.fields]
    actions = ["retry_selected"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return in_public_schema() and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return in_public_schema() and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Clearing handled failures is allowed; editing what happened is not.
        return in_public_schema() and super().has_delete_permission(request, obj)

    @admin.action(description="Retry the selected jobs (sent again in their tenant)")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[JobFailure]) -> None:
        sent = 0
        for failure in queryset:
            try:
                job_failure_retry(failure=failure)
            except ValueError as exc:
                self.message_user(request, f"{failure}: {exc}", messages.WARNING)
                continue
            sent += 1
        self.message_user(request, f"{sent} job(s) sent again.", messages.SUCCESS)
