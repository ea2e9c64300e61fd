from django.urls import URLPattern, path

from apps.notifications import apis

urlpatterns: list[URLPattern] = [
    path("notifications", apis.NotificationsApi.as_view(), name="notifications"),
    path(
        "notifications/unread-count",
        apis.UnreadCountApi.as_view(),
        name="notifications-unread-count",
    ),
    path("notifications/read-all", apis.ReadAllApi.as_view(), name="notifications-read-all"),
    path(
        "notifications/preferences",
        apis.PreferencesApi.as_view(),
        name="notifications-preferences",
    ),
    path("notifications/devices", apis.DevicesApi.as_view(), name="notifications-devices"),
    path(
        "notifications/devices/<int:device_id>",
        apis.DeviceDetailApi.as_view(),
        name="notifications-device",
    ),
    path("notifications/send", apis.SendApi.as_view(), name="notifications-send"),
    path(
        "notifications/batches/<uuid:batch_id>",
        apis.BatchDetailApi.as_view(),
        name="notifications-batch",
    ),
    path(
        "notifications/<int:notification_id>",
        apis.NotificationDetailApi.as_view(),
        name="notification",
    ),
    path(
        "notifications/<int:notification_id>/read",
        apis.NotificationReadApi.as_view(),
        name="notification-read",
    ),
]
