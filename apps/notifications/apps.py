from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core.metrics.sources import breaker_states_source_set
        from apps.notifications import consumers  # noqa: F401  (connects the event receivers)
        from apps.notifications.breaker import breaker_states_by_channel

        breaker_states_source_set(breaker_states_by_channel)
