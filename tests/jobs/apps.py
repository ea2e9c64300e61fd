from django.apps import AppConfig


class ConsumersWiringConfig(AppConfig):
    """Stand-in for the one line NotificationsConfig.ready() needs (`from apps.notifications
    import consumers`), for the processes the jobs tests start; importing twice is harmless."""

    name = "tests.jobs"
    label = "jobs_tests"

    def ready(self) -> None:
        from apps.notifications import consumers  # noqa: F401  (connects the receivers)
