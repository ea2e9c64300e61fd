from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = "a tenant's domains are edited on its page in the public admin (Tenants)."
