from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "apps.mfa"
    label = "mfa"
    verbose_name = "Multi-factor sign-in"
    default_auto_field = "django.db.models.BigAutoField"
