"""The one DRF permission class: every API view says what each method needs.

```python
class OrganizationsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "organizations.view", "POST": "organizations.manage"}
```

A method a view does not declare is refused (fail closed). `AUTHENTICATED`
means any signed-in user (their own profile, say). The check here is "held
anywhere"; where the object sits in an organization, the selector or service
then checks the grant covers that organization (`grants.require`,
`Grants.allows`) and narrows lists to the grant's subtrees.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.rbac.catalogue import ALL_CODENAMES
from apps.rbac.grants import request_grants

AUTHENTICATED = "authenticated"


def declared_permission(view: Any, method: str) -> str | None:
    declared: dict[str, str] = getattr(view, "required_permissions", {})
    method = "GET" if method == "HEAD" else method
    return declared.get(method)


class HasPermission(BasePermission):
    message = "You do not have permission to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 (with WWW-Authenticate) for anonymous requests
        needed = declared_permission(view, request.method or "GET")
        if needed is None:
            return False
        if needed == AUTHENTICATED:
            return True
        if needed not in ALL_CODENAMES:
            raise RuntimeError(f"{type(view).__name__} declares an unknown permission {needed!r}")
        if request_grants(request).has(needed):
            return True
        self.message = f"You need the permission {needed}."
        return False


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
