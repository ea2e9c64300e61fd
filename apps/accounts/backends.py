from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name

from apps.accounts import limits
from apps.accounts.models import User, normalize_email
from apps.core.tenancy import current_schema
from apps.sso.selectors import password_refused_for


class EmailBackend(ModelBackend):
    """Django's ModelBackend (the admin's password login), by e-mail, refusing deleted users
    as well as inactive ones, and everyone but break-glass accounts where the tenant
    requires single sign-on (they use /admin/sso/).

    In a tenant schema it grants no permission of its own: Django's groups and per-user
    permissions mean nothing there; roles decide (apps.rbac.backends).

    A sign-in for a request (the admin's, on every host) is under the API's brute-force
    limits, on the same counters: the attempt counts against the client address and, until
    it succeeds, as a failure of the account. Over a limit, or with Redis unreachable, it
    raises RateLimitedError or ServiceUnavailableError before any password is checked (the
    admin's login form shows them, apps/core/admin_site.py)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if request is None or username is None or password is None:
            # No client to count against (code calling authenticate() itself), or nothing
            # that would be checked.
            return super().authenticate(request, username=username, password=password, **kwargs)
        account = normalize_email(username)
        limits.login_check(request, account)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            limits.login_succeeded(request, account)
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(
            super().user_can_authenticate(user)
            and not getattr(user, "is_deleted", False)
            and not password_refused_for(user)
        )

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if current_schema() != get_public_schema_name():
            return set()
        return super().get_all_permissions(user_obj, obj)
