from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.utils.html import format_html_join

from apps.notifications.models import (
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
    Preference,
)
from apps.notifications.services import deliveries_retry

TEMPLATE_FILES = ("subject.txt", "body.txt", "body.html", "sms.txt", "push.txt")


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Rows written by the notification service: looked at here, not edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline[Delivery, Notification]):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["channel", "status", "attempts", "last_error", "provider", "sent_at"]
    readonly_fields = ["channel", "status", "attempts", "last_error", "provider", "sent_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Read"), ("no", "Unread")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(read_at__isnull=self.value() == "no")
        return queryset


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "recipient", "title", "is_security", "read_at", "created_at"]
    list_filter = ["type", "is_security", ReadFilter]
    search_fields = ["recipient__email", "title", "type"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]
    readonly_fields = [
        "recipient", "type", "title", "body", "data", "is_security", "read_at", "batch",
        "source_event_id", "created_at", "templates_in_use",
    ]  # fmt: skip

    @admin.display(description="Templates in use")
    def templates_in_use(self, obj: Notification) -> str:
        from django.template.loader import select_template

        rows = []
        for name in TEMPLATE_FILES:
            try:
                found = select_template(
                    [f"notifications/{obj.type}/{name}", f"notifications/default/{name}"]
                )
                origin = found.origin.template_name
            except TemplateDoesNotExist:
                origin = "(none)"
            rows.append((name, origin))
        return format_html_join("", "<div>{}: <code>{}</code></div>", rows)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "notification", "channel", "status", "attempts", "provider", "last_error",
        "next_attempt_at", "sent_at",
    ]  # fmt: skip
    list_filter = ["status", "channel", "provider"]
    search_fields = ["notification__recipient__email", "provider_message_id", "last_error"]
    list_select_related = ["notification"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry"]

    @admin.action(description="Retry the selected failed deliveries")
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        queued = deliveries_retry(queryset)
        messages.success(request, f"Queued {queued} failed delivery(ies) again.")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin[Preference]):
    list_display = ["user", "type", "channel", "enabled", "updated_at"]
    list_filter = ["type", "channel", "enabled"]
    search_fields = ["user__email", "type"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(DeviceSubscription)
class DeviceSubscriptionAdmin(admin.ModelAdmin[DeviceSubscription]):
    list_display = ["id", "user", "kind", "user_agent", "created_at", "last_used_at"]
    list_filter = ["kind"]
    search_fields = ["user__email", "endpoint", "user_agent"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_used_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NotificationBatch)
class NotificationBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "type", "title", "status", "total_recipients", "sent", "pending", "failed",
        "skipped", "created_by", "created_at", "finished_at",
    ]  # fmt: skip
    list_filter = ["status", "type"]
    search_fields = ["title", "type"]
    list_select_related = ["created_by"]
    readonly_fields = [f.name for f in NotificationBatch._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationBatch]:
        per_status = {
            status: Count(
                "notifications__deliveries", filter=Q(notifications__deliveries__status=status)
            )
            for status in Delivery.Status.values
        }
        return super().get_queryset(request).annotate(**per_status)

    @admin.display(description="sent")
    def sent(self, obj: Any) -> int:
        return int(obj.sent)

    @admin.display(description="pending")
    def pending(self, obj: Any) -> int:
        return int(obj.pending)

    @admin.display(description="failed")
    def failed(self, obj: Any) -> int:
        return int(obj.failed)

    @admin.display(description="skipped")
    def skipped(self, obj: Any) -> int:
        return int(obj.skipped)
