"""The signed-in user of a request, typed as the platform's user model."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from apps.accounts.models import User


def request_user(request: HttpRequest | Request) -> User:
    """The request's user, for the API views and admin pages only signed-in users reach
    (their permission classes, or the admin's own login check, let no one else through).
    Django's type stubs know `request.user` only as some user model or AnonymousUser."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user
