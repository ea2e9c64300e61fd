"""`migrate_schemas` that keeps the template schema current, first among tenant schemas, and
replays the template's plan into the tenants that were at its state.

Wired in through django-tenants' GET_EXECUTOR_FUNCTION setting, so plain
`manage.py migrate` / `migrate_schemas` (and the test runner, which calls
`migrate`) migrate: public, then the template, then every tenant. The template
goes before the tenants so that a tenant created while a deploy migrates is
cloned from the new state, and is then found up to date.

With TENANT_MIGRATION_REPLAY on (the default; `--no-replay` turns it off for one run) the
tenants go through `migration_replay.tenants_migrate`: the plan is computed and its SQL
collected once, on the template, and replayed into every schema at the template's state.
A run aimed at one schema, at a target migration, or with --fake, --fake-initial, --plan,
--check, --prune or --run-syncdb runs Django's `migrate` per schema, as django-tenants does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django_tenants.migration_executors import get_executor as upstream_get_executor
from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import tenant_connection
from apps.tenants.migration_replay import tenants_migrate
from apps.tenants.schemas import (
    clone_function_ensure,
    template_schema_ensure,
    template_schema_name,
)

# Options that ask `migrate` for something other than applying the full plan.
_PER_SCHEMA_OPTIONS = (
    "app_label",
    "migration_name",
    "fake",
    "fake_initial",
    "plan",
    "check_unapplied",
    "prune",
    "run_syncdb",
)


class _TemplateFirstMixin:
    options: dict[str, Any]

    def _replay_wanted(self) -> bool:
        if not getattr(settings, "TENANT_MIGRATION_REPLAY", True):
            return False
        if not self.options.get("replay", True):
            return False
        return not any(self.options.get(name) for name in _PER_SCHEMA_OPTIONS)

    def run_migrations(self, tenants: Any = None) -> None:
        schemas = list(tenants or [])
        tenant_phase = get_public_schema_name() not in schemas
        if not tenant_phase or self.options.get("schema_name"):
            super().run_migrations(schemas)  # type: ignore[misc]
            return
        tenant_connection().set_schema_to_public()
        template_schema_ensure()
        clone_function_ensure()
        template = template_schema_name()
        others = [s for s in schemas if s != template]
        if not self._replay_wanted():
            super().run_migrations([template, *others])  # type: ignore[misc]
            return
        outcome = tenants_migrate(
            template=template,
            schemas=others,
            migrate_normally=super().run_migrations,  # type: ignore[misc]
            verbosity=int(self.options.get("verbosity", 1)),
        )
        if outcome.failed:
            raise CommandError(
                f"Migrating {len(outcome.failed)} tenant schema(s) failed and was rolled back "
                f"(each schema whole): {', '.join(sorted(outcome.failed)[:20])}"
            )


def get_executor(codename: str | None = None) -> type:
    base = upstream_get_executor(codename)
    return type(
        f"TemplateFirst{base.__name__}", (_TemplateFirstMixin, base), {"codename": base.codename}
    )
