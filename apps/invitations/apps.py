from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "apps.invitations"
    label = "invitations"
    verbose_name = "Invitations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.invitations import receivers  # noqa: F401  (registers them)
