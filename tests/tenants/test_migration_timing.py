"""How long one additive migration (a nullable column and an index on users) takes across many
tenants, by Django's migrate per schema and by the replay. A measurement, not a contract: it
runs only when MIGRATION_TIMING_TENANTS is set, and prints its figures.

    MIGRATION_TIMING_TENANTS=100 python3 run.py test tests/tenants/test_migration_timing.py \\
        -p no:cacheprovider -q -s
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from apps.tenants.schemas import template_schema_name
from tests.tenants.test_migration_replay import (
    accounts_leaf,
    additive_migration,
    columns_of,
    committed,
    migrate,
    tenants_drop,
    tenants_provision,
)

COUNT = int(os.environ.get("MIGRATION_TIMING_TENANTS", "0"))
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not COUNT, reason="a measurement: set MIGRATION_TIMING_TENANTS=<count>"),
]


@pytest.fixture(scope="module")
def many_tenants(django_db_setup: None, django_db_blocker: Any) -> Iterator[list[str]]:
    with django_db_blocker.unblock():
        started = time.perf_counter()
        schemas = committed(lambda: tenants_provision("timing", COUNT))
        print(f"\n{COUNT} tenants created in {time.perf_counter() - started:.1f} s")  # noqa: T201 - the figures are the output
    yield schemas
    with django_db_blocker.unblock():
        committed(lambda: tenants_drop(schemas))


def timed(*args: str) -> tuple[float, float]:
    """Wall-clock seconds, and this process's CPU seconds (all its threads): what is left to
    PostgreSQL, and what more processes could spread."""
    started, cpu = time.perf_counter(), time.process_time()
    migrate(*args, verbosity=0)
    return time.perf_counter() - started, time.process_time() - cpu


def test_one_additive_migration_normal_path_against_replay(
    many_tenants: list[str], tmp_path: Path, django_db_blocker: Any
) -> None:
    figures: dict[str, tuple[float, float]] = {}
    with django_db_blocker.unblock():
        figures["nothing to apply, normal path"] = timed("--tenant", "--no-replay")
        figures["nothing to apply, replay (fingerprints only)"] = timed("--tenant")
        with additive_migration(tmp_path):
            figures["the migration, normal path"] = timed("--tenant", "--no-replay")
            for workers in (1, 2, 4):
                migrate("--tenant", "accounts", accounts_leaf(), verbosity=0)
                with override_settings(TENANT_MIGRATION_WORKERS=workers):
                    figures[f"the migration, replay, {workers} worker(s)"] = timed("--tenant")
            assert "replay_note" in columns_of(many_tenants[-1], "accounts_user")
            assert "replay_note" in columns_of(template_schema_name(), "accounts_user")
    print(f"\nOne additive migration across {COUNT} tenants (+ the template):")  # noqa: T201 - the figures are the output
    for label, (seconds, cpu) in figures.items():
        print(  # noqa: T201 - the figures are the output
            f"  {label:48} {seconds:7.2f} s {seconds / COUNT * 1000:7.1f} ms/tenant "
            f"(Python CPU {cpu:6.2f} s)"
        )
