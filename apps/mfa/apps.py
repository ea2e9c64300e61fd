from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "apps.mfa"
    label = "mfa"
    verbose_name = "Multi-factor sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fills the method and enrolment registries (TOTP, recovery codes); WebAuthn's
        # module registers itself the same way when imported here.
        from apps.mfa.services import factors  # noqa: F401
