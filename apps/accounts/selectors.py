from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, QuerySet

from apps.accounts.models import Session, User
from apps.core.errors import NotFoundError, ValidationError

ORDERINGS = frozenset(
    f"{sign}{field}"
    for field in ("created_at", "email", "username", "full_name", "last_login")
    for sign in ("", "-")
)


def can_manage_users(actor: User) -> bool:
    """Until roles exist: the tenant's staff manage users; everyone else only themselves."""
    return bool(actor.is_authenticated and (actor.is_staff or actor.is_superuser))


def search_query(text: str) -> SearchQuery | None:
    """Every word of `text` as a prefix ('ann lee' finds 'Annabel Leeds'), all required.

    Only word characters reach to_tsquery, so no input can make a malformed query.
    """
    words = re.findall(r"\w+", text.lower())[:8]
    if not words:
        return None
    return SearchQuery(
        " & ".join(f"{word}:*" for word in words), search_type="raw", config="simple"
    )


def user_list(
    *,
    actor: User,
    search: str | None = None,
    is_active: bool | None = None,
    ordering: str | None = None,
    deleted: bool = False,
) -> QuerySet[User]:
    """The users `actor` may list: live ones (or, with `deleted`, the soft-deleted ones).

    With `search`, best matches first (username over name over address).
    """
    qs = User.objects.filter(is_deleted=deleted)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    if ordering is not None and ordering not in ORDERINGS:
        raise ValidationError.for_field("ordering", f"Use one of: {', '.join(sorted(ORDERINGS))}.")
    if search:
        query = search_query(search)
        if query is None:
            return qs.none()
        qs = qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query))
        return qs.order_by(ordering, "id") if ordering else qs.order_by("-rank", "id")
    return qs.order_by(ordering or "id", "id")


def user_get(*, actor: User, user_id: int, include_deleted: bool = False) -> User:
    """A user `actor` may see: themselves, or anyone if they manage users. Otherwise 404,
    so ids of other people cannot be probed."""
    if not can_manage_users(actor) and user_id != actor.pk:
        raise NotFoundError("User not found")
    qs = User.objects.all() if include_deleted and can_manage_users(actor) else User.objects.live()
    user = qs.filter(pk=user_id).first()
    if user is None:
        raise NotFoundError("User not found")
    return user


def session_list(*, user: User) -> QuerySet[Session]:
    return Session.objects.live().filter(user=user).order_by("-last_used_at")
