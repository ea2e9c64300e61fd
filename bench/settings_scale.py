"""The benchmark's production settings plus `bench.scale_app`, a tenant app whose migrations
the scale benchmark applies across every tenant (SCALE_MIGRATIONS picks the version)."""

import os

from bench.settings import *  # noqa: F403
from bench.settings import INSTALLED_APPS, TENANT_APPS

TENANT_APPS = [*TENANT_APPS, "bench.scale_app"]
INSTALLED_APPS = [*INSTALLED_APPS, "bench.scale_app"]
MIGRATION_MODULES = {
    "scale_app": f"bench.scale_app.migrations_{os.environ.get('SCALE_MIGRATIONS', 'v1')}"
}
