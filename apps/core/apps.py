from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Platform core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core.tracing import tracing_django_ready

        tracing_django_ready()
        if settings.METRICS_ENABLED:
            # Celery's task signals: runs and durations per task (apps/core/metrics/celery.py).
            from apps.core.metrics.celery import task_metrics_connect

            task_metrics_connect()
