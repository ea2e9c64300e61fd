from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Django's ModelBackend (the admin's password login), by e-mail, refusing deleted users
    as well as inactive ones, and everyone but break-glass accounts where the tenant
    requires single sign-on (they use /admin/sso/)."""

    def user_can_authenticate(self, user: Any) -> bool:
        from apps.sso.selectors import password_refused_for

        return bool(
            super().user_can_authenticate(user)
            and not getattr(user, "is_deleted", False)
            and not password_refused_for(user)
        )
