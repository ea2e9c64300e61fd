from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "apps.keys"
    label = "keys"
    verbose_name = "Token signing keys"
    default_auto_field = "django.db.models.BigAutoField"
