from apps.tenants.management.replaced import ReplacedCommand


class Command(ReplacedCommand):
    replacement = (
        "a tenant's schema name follows its slug and does not change (tokens, cache keys "
        "and tasks name it)."
    )
