"""Notifications in the tenant's admin. What the notification service writes (notifications,
deliveries, batches) is read here, not edited; the writes that are offered go through the
services as the API's do: deleting a notification (`notification_delete`), retrying failed
deliveries, a user's preferences (`preferences_update`, so security notices stay on) and
removing a device (`device_delete`). Devices are registered by the devices themselves."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.utils.html import format_html_join

from apps.core.admin_bases import ReadOnlyModelAdmin
from apps.core.admin_site import ServiceAdminMixin
from apps.notifications.delivery_queue import deliveries_retry
from apps.notifications.inbox import (
    device_delete,
    notification_delete,
    preference_delete,
    preferences_update,
)
from apps.notifications.models import (
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
    Preference,
)
from apps.notifications.types import NOTIFICATION_TYPES

TEMPLATE_FILES = ("subject.txt", "body.txt", "body.html", "sms.txt", "push.txt")


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
class NotificationAdmin(ReadOnlyModelAdmin):
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # As the recipient may through the API: the notification and its deliveries go.
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Its deliveries go with it (as through the API), though nobody deletes one alone.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed = {name for name in perms_needed if name != Delivery._meta.verbose_name}
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Notification) -> None:
        notification_delete(notification=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        for notification in queryset:
            notification_delete(notification=notification)

    @admin.display(description="Templates in use")
    def templates_in_use(self, obj: Notification) -> str:
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
class DeliveryAdmin(ReadOnlyModelAdmin):
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


class PreferenceForm(forms.ModelForm[Preference]):
    type = forms.ChoiceField(
        choices=sorted((key, key) for key, kind in NOTIFICATION_TYPES.items() if not kind.security),
        help_text="Security notices always reach the user: they have no preference.",
    )

    class Meta:
        model = Preference
        fields = ["user", "type", "channel", "enabled"]


@admin.register(Preference)
class PreferenceAdmin(ServiceAdminMixin, admin.ModelAdmin[Preference]):
    form = PreferenceForm
    list_display = ["user", "type", "channel", "enabled", "updated_at"]
    list_filter = ["type", "channel", "enabled"]
    search_fields = ["user__email", "type"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Which preference a row is cannot change; only whether it is on.
        return ["user", "type", "channel", "updated_at"] if obj else ["updated_at"]

    def save_model(self, request: HttpRequest, obj: Preference, form: Any, change: bool) -> None:
        preferences_update(
            user=obj.user,
            preferences=[{"type": obj.type, "channel": obj.channel, "enabled": obj.enabled}],
        )
        saved = Preference.objects.get(user=obj.user, type=obj.type, channel=obj.channel)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Preference) -> None:
        preference_delete(preference=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Preference]) -> None:
        for preference in queryset:
            preference_delete(preference=preference)


@admin.register(DeviceSubscription)
class DeviceSubscriptionAdmin(admin.ModelAdmin[DeviceSubscription]):
    """Devices register themselves (their endpoint and keys come from the browser or app);
    here they are listed and can be removed."""

    list_display = ["id", "user", "kind", "user_agent", "created_at", "last_used_at"]
    list_filter = ["kind"]
    search_fields = ["user__email", "endpoint", "user_agent"]
    list_select_related = ["user"]
    readonly_fields = ["user", "kind", "endpoint", "user_agent", "created_at", "last_used_at"]
    exclude = ["keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: DeviceSubscription) -> None:
        device_delete(device=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DeviceSubscription]) -> None:
        for device in queryset:
            device_delete(device=device)


@admin.register(NotificationBatch)
class NotificationBatchAdmin(ReadOnlyModelAdmin):
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
