"""A connection that has served many tenant schemas is closed after its request: a PostgreSQL
backend's relation caches grow with every schema it reads (apps/core/dbbackend)."""

from __future__ import annotations

import time

import pytest
from django.db import connections

from apps.core.dbbackend.base import DatabaseWrapper


def _wrapper() -> DatabaseWrapper:
    """A connection of its own, outside the test's transaction."""
    wrapper = connections.create_connection("default")
    assert isinstance(wrapper, DatabaseWrapper)
    return wrapper


def _backend_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
def test_a_connection_is_recycled_after_max_schemas_distinct_schemas(tenant_a, tenant_b) -> None:
    wrapper = _wrapper()
    wrapper.settings_dict["MAX_SCHEMAS"] = 2
    wrapper.settings_dict["CONN_MAX_AGE"] = None  # else persistent connections are the rule
    try:
        wrapper.set_schema(tenant_a.schema)
        first = _backend_pid(wrapper)
        wrapper.set_schema(tenant_b.schema)
        _backend_pid(wrapper)
        wrapper.set_schema(tenant_a.schema)  # a schema seen before does not count again
        _backend_pid(wrapper)
        wrapper.close_if_unusable_or_obsolete()  # what Django does at the end of a request
        assert wrapper.connection is not None
        assert _backend_pid(wrapper) == first

        wrapper.set_schema_to_public()  # the third distinct schema: over the limit
        assert _backend_pid(wrapper) == first  # not closed in the middle of the request
        assert wrapper.close_at is not None and wrapper.close_at <= time.monotonic()
        wrapper.close_if_unusable_or_obsolete()
        assert wrapper.connection is None

        wrapper.set_schema(tenant_b.schema)
        assert _backend_pid(wrapper) != first  # a fresh backend, and a fresh count
        wrapper.close_if_unusable_or_obsolete()
        assert wrapper.connection is not None
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_no_limit_when_max_schemas_is_zero(tenant_a, tenant_b) -> None:
    wrapper = _wrapper()
    wrapper.settings_dict["MAX_SCHEMAS"] = 0
    wrapper.settings_dict["CONN_MAX_AGE"] = None
    try:
        for schema in (tenant_a.schema, tenant_b.schema, "public"):
            wrapper.set_schema(schema)
            _backend_pid(wrapper)
        wrapper.close_if_unusable_or_obsolete()
        assert wrapper.connection is not None
    finally:
        wrapper.close()
