"""django-tenants' PostgreSQL backend, minus the `SET search_path` that changes nothing, and
safe behind a pooler in transaction mode.

The connection's `POOLER` setting (DATABASE_POOLER: none, session, transaction) picks how
the tenant's schema reaches PostgreSQL:

- none / session: one client connection is one server connection for its whole life, so
  a session-level `SET search_path` holds until changed. django-tenants forgets the path
  whenever a tenant is set, and a request sets one (public, then the tenant) every time;
  here the connection remembers the path it last applied and skips the SET when the
  wanted path is the same. The memory is dropped whenever the server-side value may
  differ from it: on connect, close, rollback and savepoint rollback (a rolled-back SET is
  undone by PostgreSQL).

- transaction: consecutive transactions of one client may run on different server
  connections (PgBouncer's transaction pooling), so a session-level SET would stay on a
  server connection that another client (another tenant) uses next, and this client's
  next statement may run on a connection left on someone else's path. No session-level
  SET is ever sent. Instead every transaction carries its own `SET LOCAL search_path`,
  which PostgreSQL forgets at the transaction's end: sent in the same query string as the
  first statement of each transaction (and again when the tenant changes inside it), and
  in front of every statement run in autocommit mode, where the two statements form one
  implicit transaction. `SET LOCAL`, not `set_config()` in a SELECT: a SELECT takes a
  snapshot, after which `SET TRANSACTION ISOLATION LEVEL` (tenant exports) is refused.
  This needs client-side parameter binding (psycopg's ClientCursor, the simple query
  protocol that runs several statements in one message), which also means no server-side
  prepared statements: those are per server connection and would not be found on the
  next one.

A PostgreSQL backend keeps what it learns of every relation it reads (relation, catalog
and plan caches, in its own memory, never given back while it lives), so one connection
that serves many tenants grows with every schema: about 0.15-0.2 MiB each here, past
200 MiB after a thousand. Without a pooler or in session mode, a connection is therefore
closed (at the end of the request or task: Django's close_if_unusable_or_obsolete) once
it has applied the search paths of MAX_SCHEMAS distinct schemas (DB_MAX_SCHEMAS_PER_CONNECTION);
the next request opens a fresh backend. Behind transaction pooling the server
connections are PgBouncer's: its `server_lifetime` recycles them.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError
from django.db.backends.postgresql.base import Cursor as DjangoClientCursor  # type: ignore[attr-defined]
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import quote_schema_name
from psycopg.pq import TransactionStatus

POOLER_MODES = ("none", "session", "transaction")

# Statements that need no schema and must not follow anything in their transaction, run
# where the transaction failed (a prefix would be refused too), or cannot run in a
# transaction block at all (the implicit one of a two-statement query included).
_UNPREFIXED = (
    "SET TRANSACTION",
    "ROLLBACK",
    "COMMIT",
    "BEGIN",
    "START TRANSACTION",
    "CREATE DATABASE",
    "DROP DATABASE",
    "VACUUM",
    "ALTER SYSTEM",
    "CREATE TABLESPACE",
    "DROP TABLESPACE",
)
# Needs the tenant's schema and no transaction block: cannot carry a SET LOCAL.
_CONCURRENTLY = re.compile(
    r"^\s*(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX)\b.*\bCONCURRENTLY\b", re.I | re.S
)


class DatabaseWrapper(TenantDatabaseWrapper):
    _applied_search_path: list[str] | None = None
    # Transaction mode: the path this connection's open transaction already has (SET LOCAL).
    _transaction_search_path: str | None = None
    _search_path_sql: tuple[tuple[str | None, bool], str] | None = None

    def __init__(self, settings_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        pooler = settings_dict.get("POOLER") or "none"
        if pooler not in POOLER_MODES:
            raise ImproperlyConfigured(f"POOLER must be one of {', '.join(POOLER_MODES)}.")
        super().__init__(settings_dict, *args, **kwargs)
        # Schemas whose path this connection applied since it connected (see MAX_SCHEMAS).
        self._schemas_seen: set[str] = set()

    @property
    def is_transaction_pooled(self) -> bool:
        return bool(self.settings_dict.get("POOLER") == "transaction")

    # ------------------------------------------------------------- none / session
    def _handle_search_path(self, cursor: Any = None) -> None:
        if self.is_transaction_pooled:
            return  # each statement carries its path (TransactionPooledCursor)
        if self._setting_search_path:
            return
        wanted = self._get_cursor_search_paths()
        if self._applied_search_path is not None and self._applied_search_path == wanted:
            self.search_path_set_schemas = wanted
            return
        super()._handle_search_path(cursor)
        self._applied_search_path = self.search_path_set_schemas
        self._schema_seen(self.schema_name)

    def _schema_seen(self, schema: str | None) -> None:
        limit = self.settings_dict.get("MAX_SCHEMAS") or 0
        if not limit or schema is None or schema in self._schemas_seen:
            return
        self._schemas_seen.add(schema)
        if len(self._schemas_seen) > limit:
            # Obsolete from now: closed at the end of this request or task, not in the middle.
            self.close_at = time.monotonic()

    def connect(self) -> None:
        self._forget_applied_paths()
        self._schemas_seen.clear()
        super().connect()

    def close(self) -> None:
        self._forget_applied_paths()
        super().close()

    def rollback(self) -> None:
        self._forget_applied_paths()
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        self._forget_applied_paths()
        super().savepoint_rollback(sid)

    def _commit(self) -> None:
        self._transaction_search_path = None
        super()._commit()

    def _rollback(self) -> None:
        self._transaction_search_path = None
        super()._rollback()

    def _forget_applied_paths(self) -> None:
        self._applied_search_path = None
        self._transaction_search_path = None

    # ------------------------------------------------------------- transaction
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if self.is_transaction_pooled:
            if self.settings_dict["OPTIONS"].get("server_side_binding"):
                raise ImproperlyConfigured(
                    "server_side_binding (DB_PREPARED_STATEMENTS) cannot be used with "
                    "DATABASE_POOLER=transaction."
                )
            params["cursor_factory"] = TransactionPooledCursor
            params["prepare_threshold"] = None
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        if name and self.is_transaction_pooled:
            # A named cursor lives on one server connection across fetches; DATABASES
            # sets DISABLE_SERVER_SIDE_CURSORS in this mode, so nothing should get here.
            raise NotSupportedError("Server-side cursors do not work behind transaction pooling.")
        cursor = super().create_cursor(name)
        if isinstance(cursor, TransactionPooledCursor):
            cursor.tenant_connection = self
        return cursor

    def search_path_sql(self) -> str:
        """`SET LOCAL search_path` for the connection's tenant (names validated by
        django-tenants: no quotes, backslashes or semicolons). Built once per tenant
        switch, not per statement."""
        key = (self.schema_name, self.include_public_schema)
        if self._search_path_sql is None or self._search_path_sql[0] != key:
            schemas = ", ".join(quote_schema_name(name) for name in self._get_cursor_search_paths())
            self._search_path_sql = (key, f"SET LOCAL search_path = {schemas}")
        return self._search_path_sql[1]


class TransactionPooledCursor(DjangoClientCursor):
    """A psycopg client-side-binding cursor whose statements carry the tenant's path."""

    tenant_connection: DatabaseWrapper | None = None

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        owner = self.tenant_connection
        if owner is None:
            return super().execute(query, params, **kwargs)
        status = self.connection.info.transaction_status
        if status == TransactionStatus.INERROR:
            return super().execute(query, params, **kwargs)
        statement = self.mogrify(query, params)
        if _CONCURRENTLY.match(statement):
            raise NotSupportedError(
                "CONCURRENTLY cannot run behind transaction pooling: run migrations against "
                "PostgreSQL directly (DATABASE_POOLER=none)."
            )
        if statement.lstrip()[:17].upper().startswith(_UNPREFIXED):
            # ROLLBACK (TO SAVEPOINT) may undo a SET LOCAL: the next statement sends it again.
            owner._transaction_search_path = None
            return super().execute(statement, **kwargs)
        path_sql = owner.search_path_sql()
        # IDLE: this statement starts a transaction (psycopg's BEGIN, or the implicit one of
        # an autocommit query); anything remembered belonged to an earlier transaction.
        if status == TransactionStatus.INTRANS and owner._transaction_search_path == path_sql:
            return super().execute(statement, **kwargs)
        super().execute(f"{path_sql}; {statement}", **kwargs)
        self.nextset()  # the caller's statement's result, not the SET's
        owner._transaction_search_path = None if self.connection.autocommit else path_sql
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        owner = self.tenant_connection
        status = self.connection.info.transaction_status
        if owner is None or status == TransactionStatus.INERROR:
            return super().executemany(query, params_seq, **kwargs)
        path_sql = owner.search_path_sql()
        if status == TransactionStatus.IDLE and self.connection.autocommit:
            # psycopg pipelines the statements: one explicit transaction holds them and the path.
            with self.connection.transaction():
                super().execute(path_sql)
                return super().executemany(query, params_seq, **kwargs)
        if status == TransactionStatus.IDLE or owner._transaction_search_path != path_sql:
            super().execute(path_sql)  # psycopg sends BEGIN first when IDLE
            owner._transaction_search_path = path_sql
        return super().executemany(query, params_seq, **kwargs)
