from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsPlatformOperator(BasePermission):
    """Staff users of the public schema: the people who run the platform itself."""

    message = "Only platform operators may manage tenants."

    def has_permission(self, request: Request, view: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        user = request.user
        return bool(
            tenant is not None
            and tenant.is_public
            and user is not None
            and user.is_authenticated
            and user.is_active
            and user.is_staff
        )
