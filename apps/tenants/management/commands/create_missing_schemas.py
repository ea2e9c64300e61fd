from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = (
        "a tenant's schema is created with its row, in one transaction, by `tenant_create`; "
        "a tenant without a schema is not made here."
    )
