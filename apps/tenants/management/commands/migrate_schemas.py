"""django-tenants' migrate_schemas with `--no-replay` (see apps/tenants/migration_executor.py)."""

from __future__ import annotations

from argparse import ArgumentParser

from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand


class Command(MigrateSchemasCommand):
    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-replay",
            action="store_false",
            dest="replay",
            default=True,
            help="Run Django's migrate in every tenant schema instead of replaying the "
            "template's SQL (TENANT_MIGRATION_REPLAY).",
        )
