from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import current_schema


class EmailBackend(ModelBackend):
    """Django's ModelBackend (the admin's password login), by e-mail, refusing deleted users
    as well as inactive ones, and everyone but break-glass accounts where the tenant
    requires single sign-on (they use /admin/sso/).

    In a tenant schema it grants no permission of its own: Django's groups and per-user
    permissions mean nothing there; roles decide (apps.rbac.backends)."""

    def user_can_authenticate(self, user: Any) -> bool:
        from apps.sso.selectors import password_refused_for

        return bool(
            super().user_can_authenticate(user)
            and not getattr(user, "is_deleted", False)
            and not password_refused_for(user)
        )

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if current_schema() != get_public_schema_name():
            return set()
        return super().get_all_permissions(user_obj, obj)
