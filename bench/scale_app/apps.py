from django.apps import AppConfig


class ScaleAppConfig(AppConfig):
    name = "bench.scale_app"
    label = "scale_app"
    default_auto_field = "django.db.models.BigAutoField"
