"""The database: PostgreSQL through django-tenants (apps.core.dbbackend), directly or behind a
connection pooler (DATABASE_POOLER; docs/operations.md, "Connection pooling")."""

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from platform_site.env import env_bool, env_int, env_str

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. `python3 run.py` starts an embedded PostgreSQL and sets it for you."
    )
# What sits between the platform and PostgreSQL: nothing (none), a pooler that gives a
# client one server connection for the client connection's life (session), or one per
# transaction (transaction: PgBouncer's pool_mode=transaction).
DATABASE_POOLER = env_str("DATABASE_POOLER", "none").strip().lower() or "none"
if DATABASE_POOLER not in ("none", "session", "transaction"):
    raise ImproperlyConfigured(
        f"DATABASE_POOLER must be none, session or transaction, not {DATABASE_POOLER!r}."
    )
TRANSACTION_POOLED = DATABASE_POOLER == "transaction"

DATABASES = {
    "default": {
        **dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        ),
        "ENGINE": "apps.core.dbbackend",
        # Read by apps.core.dbbackend: in transaction mode every transaction carries its
        # own `SET LOCAL search_path` instead of one session-level SET per connection.
        "POOLER": DATABASE_POOLER,
        # A server-side cursor is DECLAREd on one server connection and FETCHed from later:
        # behind transaction pooling the FETCH may reach another one.
        "DISABLE_SERVER_SIDE_CURSORS": TRANSACTION_POOLED,
        # Read by apps.core.dbbackend: a connection is closed after the request (or task) in
        # which it applied the search path of this many distinct schemas, because a
        # PostgreSQL backend's caches grow with every schema it reads (0: never).
        "MAX_SCHEMAS": env_int("DB_MAX_SCHEMAS_PER_CONNECTION", 200),
    }
}
if TRANSACTION_POOLED and env_bool("DB_PREPARED_STATEMENTS", False):
    raise ImproperlyConfigured(
        "DB_PREPARED_STATEMENTS=true does not work with DATABASE_POOLER=transaction: a "
        "statement prepared on one server connection is missing on the next."
    )
if not TRANSACTION_POOLED and env_bool("DB_PREPARED_STATEMENTS", True):
    # Server-side parameters and psycopg's prepared statements: a statement run a few times
    # on a connection is parsed and planned once, not on every request. Without a pooler, or
    # with one in session mode, a client connection keeps its server connection, and with it
    # the statements prepared there.
    DATABASES["default"]["OPTIONS"] = {
        **dict(DATABASES["default"].get("OPTIONS") or {}),  # type: ignore[call-overload]
        "server_side_binding": True,
        "prepare_threshold": env_int("DB_PREPARE_THRESHOLD", 5),
    }
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
