"""Tenancy (django-tenants): which hosts are the platform's, how a tenant is found, kept and
exported."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from platform_site.env import env_bool, env_int, env_list, env_str, local_dir, platform_base_domain

# Hosts that serve the platform itself (operators, tenant provisioning) from the public schema.
PUBLIC_HOSTS = env_list("PUBLIC_HOSTS", [platform_base_domain()])

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenant schemas are clones of this one (kept migrated by migrate_schemas).
TENANT_TEMPLATE_SCHEMA = "tenant_template"
GET_EXECUTOR_FUNCTION = "apps.tenants.migration_executor.get_executor"
# migrate_schemas collects the template's plan as SQL once and replays it into every tenant
# at the template's state, by this many threads; each schema's DDL waits this many seconds
# for a table lock before it retries (apps/tenants/migration_replay.py).
TENANT_MIGRATION_REPLAY = env_bool("TENANT_MIGRATION_REPLAY", True)
TENANT_MIGRATION_WORKERS = env_int("TENANT_MIGRATION_WORKERS", 2)
TENANT_MIGRATION_LOCK_TIMEOUT = env_int("TENANT_MIGRATION_LOCK_TIMEOUT", 5)
if TENANT_MIGRATION_WORKERS < 1 or TENANT_MIGRATION_LOCK_TIMEOUT < 0:
    raise ImproperlyConfigured(
        "TENANT_MIGRATION_WORKERS must be 1 or more, TENANT_MIGRATION_LOCK_TIMEOUT 0 or more."
    )
# Issue `SET search_path` only when the schema changes, not before every query.
TENANT_LIMIT_SET_CALLS = True
TENANT_CACHE_SECONDS = env_int("TENANT_CACHE_SECONDS", 300)
TENANT_CACHE_LOCAL_SECONDS = env_int("TENANT_CACHE_LOCAL_SECONDS", 5)
TENANT_CACHE_MISS_SECONDS = 30
# `X-Tenant: <slug>` on the public API host selects a tenant (for clients that cannot set Host).
TENANT_HEADER_ENABLED = env_bool("TENANT_HEADER_ENABLED", False)
TENANT_HEADER_HOSTS = env_list("TENANT_HEADER_HOSTS", PUBLIC_HOSTS)
TENANT_UNSCOPED_PATH_PREFIXES = ["/health/"]
# A deleted tenant's schema and data are dropped this many days later (tenants.purge_deleted);
# until then it can be restored.
TENANT_RETENTION_DAYS = env_int("TENANT_RETENTION_DAYS", 30)
if TENANT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("TENANT_RETENTION_DAYS must be 0 or more.")

# Tenant archives (`manage.py tenant_export`, POST /api/v1/tenants/{id}/exports) are written
# here, readable by this user only: they hold the tenant's users with their password
# hashes. Web and worker must see the same directory (a shared volume), since the worker
# writes what the web serves for download.
TENANT_EXPORT_DIR = Path(env_str("TENANT_EXPORT_DIR", "") or local_dir() / "exports")
# An export job is stopped after this many seconds. A job found running for longer is
# taken as a lost worker's and written again.
TENANT_EXPORT_TIME_LIMIT = env_int("TENANT_EXPORT_TIME_LIMIT", 3600)
