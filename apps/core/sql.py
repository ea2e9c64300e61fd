"""Helpers for the few hot statements written out instead of built by the ORM.

Where building and compiling an ORM query costs more than the statement's
round trip, an app's `sql.py` writes the statement out. It takes table and
column names from the models' `_meta` through these helpers, so the texts
follow the models, and builds each text once per process.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import connection
from django.db.models import Field


def quote(name: str | None) -> str:
    return str(connection.ops.quote_name(str(name)))


def model_field(model: Any, name: str) -> Field[Any, Any]:
    return cast("Field[Any, Any]", model._meta.get_field(name))


def column(model: Any, name: str) -> str:
    """The quoted column of `model`'s field `name`."""
    return quote(model_field(model, name).column)


def table(model: Any) -> str:
    return quote(model._meta.db_table)
