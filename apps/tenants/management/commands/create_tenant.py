from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = (
        "use `tenant_create --slug <slug> --name <name> --admin-email <email>` (schema cloned "
        "from the template, primary domain, first admin, audit)."
    )
