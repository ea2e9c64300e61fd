from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = (
        "use `tenant_delete <slug>` (deactivated now, dropped after TENANT_RETENTION_DAYS; "
        "`--now` to drop at once)."
    )
