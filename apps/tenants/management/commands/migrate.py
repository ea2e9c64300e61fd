"""`migrate` is migrate_schemas here, as in django-tenants (with `--no-replay` too)."""

from apps.tenants.management.commands.migrate_schemas import Command

__all__ = ["Command"]
