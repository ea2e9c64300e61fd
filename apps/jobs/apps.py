from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Background jobs and events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery's task signals: retry notes, failure records, periodic run flags.
        from apps.jobs import signals  # noqa: F401
