"""Sign-in's statements, written out instead of built by the ORM (see apps/core/sql.py).

A sign-in reads before the password hash and writes after it, one statement
each:

- `signin_candidate`: the live user with the address, whether the tenant
  requires single sign-on of that user (`apps.sso.selectors.password_refused_for`)
  and the names of the user's roles (`apps.accounts.tokens.user_roles`), from
  one SELECT through the live-address unique index;
- `signin_record`: the new session row and the user's `last_login`, in one
  `WITH ... INSERT ... UPDATE` (atomic on its own).

Why: a 19 MiB Argon2 pass leaves the CPU caches cold, and each statement
after it took 1.4 to 1.6 ms instead of 0.6 to 0.8 (compiling included); the
ORM path made five round trips after the hash (the SSO check, the roles, the
session insert, the user update, the commit). The tests check both
statements against the ORM readers and writes they replace. Like update(),
they send no model signals: the caller drops the user's cached state itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django_tenants.utils import get_public_schema_name

from apps.accounts.models import Session, User, normalize_email
from apps.core.sql import column, quote, table
from apps.core.tenancy import current_schema


@dataclass(frozen=True)
class SignInCandidate:
    user: User
    password_refused: bool  # single sign-on is required of this user (no password)
    roles: list[str]  # role names, sorted, for the token's informational claim


def signin_candidate(email: str) -> SignInCandidate | None:
    """The live user with address `email`, with what the token and the SSO rule need."""
    in_public = current_schema() == get_public_schema_name()
    fields = _user_fields()
    with connection.cursor() as cursor:
        cursor.execute(_candidate_sql(in_public), [normalize_email(email)])
        row = cursor.fetchone()
    if row is None:
        return None
    user = User.from_db(connection.alias, [f.attname for f in fields], row[: len(fields)])
    if in_public:
        # Platform operators: no tenant, no providers, no roles (tokens.user_roles).
        return SignInCandidate(
            user=user, password_refused=False, roles=["operator"] if user.is_staff else []
        )
    refused, roles = row[len(fields)], row[len(fields) + 1]
    return SignInCandidate(user=user, password_refused=bool(refused), roles=sorted(set(roles)))


def signin_record(*, session: Session, user: User) -> None:
    """Insert `session` and set `user.last_login`, in one statement."""
    fields = _session_fields()
    values = [f.get_db_prep_save(f.pre_save(session, True), connection) for f in fields]
    last_login = User._meta.get_field("last_login")
    with connection.cursor() as cursor:
        cursor.execute(
            _record_sql(),
            [*values, last_login.get_db_prep_save(user.last_login, connection), user.pk],
        )
    session._state.adding = False
    session._state.db = connection.alias


# ------------------------------------------------------------------ the texts


@functools.cache
def _user_fields() -> list[Any]:
    # Every column but the search vector (generated; a sign-in never reads it).
    return [f for f in User._meta.concrete_fields if f.name != "search_vector"]


@functools.cache
def _session_fields() -> list[Any]:
    return list(Session._meta.concrete_fields)


@functools.cache
def _candidate_sql(in_public: bool) -> str:
    columns = ", ".join(f"u.{quote(f.column)}" for f in _user_fields())
    where = f"WHERE lower(u.{column(User, 'email')}) = %s AND NOT u.{column(User, 'is_deleted')}"
    if in_public:
        return f"SELECT {columns} FROM {table(User)} AS u {where}"  # noqa: S608 (model names)

    from apps.rbac.models import Role, RoleAssignment
    from apps.sso.models import IdentityProvider

    required = (
        f"p.{column(IdentityProvider, 'enabled')} AND p.{column(IdentityProvider, 'sso_required')}"
    )
    break_glass = IdentityProvider._meta.get_field("break_glass_users")
    through = break_glass.remote_field.through
    provider_column = quote(break_glass.m2m_column_name())
    user_column = quote(break_glass.m2m_reverse_name())
    provider_pk = quote(IdentityProvider._meta.pk.column)
    refused = (
        f"EXISTS (SELECT 1 FROM {table(IdentityProvider)} AS p WHERE {required}) "  # noqa: S608
        f"AND NOT EXISTS (SELECT 1 FROM {table(IdentityProvider)} AS p "
        f"JOIN {table(through)} AS b ON b.{provider_column} = p.{provider_pk} "
        f"WHERE {required} AND b.{user_column} = u.{quote(User._meta.pk.column)})"
    )
    roles = (
        f"ARRAY(SELECT r.{column(Role, 'name')} FROM {table(RoleAssignment)} AS a "  # noqa: S608
        f"JOIN {table(Role)} AS r ON r.{quote(Role._meta.pk.column)} = a.{column(RoleAssignment, 'role')} "
        f"WHERE a.{column(RoleAssignment, 'user')} = u.{quote(User._meta.pk.column)})"
    )
    return f"SELECT {columns}, {refused}, {roles} FROM {table(User)} AS u {where}"  # noqa: S608


@functools.cache
def _record_sql() -> str:
    fields = _session_fields()
    return (
        f"WITH new_session AS (INSERT INTO {table(Session)} "  # noqa: S608 (model names)
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})) "
        f"UPDATE {table(User)} SET {column(User, 'last_login')} = %s "
        f"WHERE {quote(User._meta.pk.column)} = %s"
    )
