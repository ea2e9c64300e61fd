from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = (
        "new tenants are clones of the template schema: use `tenant_create`. A tenant's "
        "data moves with `tenant_export` and `tenant_import`."
    )
