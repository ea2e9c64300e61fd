"""django-tenants' PostgreSQL backend, minus the `SET search_path` that changes nothing.

django-tenants forgets the connection's search_path whenever a tenant is set,
and a request sets one (public, then the tenant) every time, so with
persistent connections every request that touches the database starts with a
`SET search_path` round trip, even when the connection already has exactly
that path from the previous request.

Here the connection remembers the path it last applied and skips the SET
when the wanted path is the same. The memory is dropped whenever the
server-side value may differ from it: on connect, close, rollback and
savepoint rollback (a rolled-back SET is undone by PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    _applied_search_path: list[str] | None = None

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path:
            return
        wanted = self._get_cursor_search_paths()
        if self._applied_search_path is not None and self._applied_search_path == wanted:
            self.search_path_set_schemas = wanted
            return
        super()._handle_search_path(cursor)
        self._applied_search_path = self.search_path_set_schemas

    def connect(self) -> None:
        self._applied_search_path = None
        super().connect()

    def close(self) -> None:
        self._applied_search_path = None
        super().close()

    def rollback(self) -> None:
        self._applied_search_path = None
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        self._applied_search_path = None
        super().savepoint_rollback(sid)
