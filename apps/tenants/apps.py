from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"
    verbose_name = "Tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the app registry is ready (its receivers name the models): Django's
        # own way to connect an app's signal receivers, not a cycle.
        from apps.tenants import signals  # noqa: F401  (cache invalidation receivers)
