from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "apps.mfa"
    label = "mfa"
    verbose_name = "Multi-factor sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "webauthn" factor kind and verification method in the registries.
        from apps.mfa import webauthn_flows  # noqa: F401
