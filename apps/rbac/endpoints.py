"""What each API endpoint needs, read off the views themselves.

Used by the permission matrix test, the endpoint table in docs/api.md (`manage.py
permissions_table` prints it) and anyone auditing access: the declarations in
code are the only source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.generators import EndpointEnumerator
from rest_framework.permissions import AllowAny, IsAuthenticated

from apps.rbac.drf import AUTHENTICATED, HasPermission, declared_permission

PUBLIC = "public"
UNDECLARED = "UNDECLARED"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    needs: str  # a codename, AUTHENTICATED, PUBLIC, an other class's name, or UNDECLARED
    view: type[Any]


def endpoint_needs(view_class: type[Any], method: str) -> str:
    classes = list(getattr(view_class, "permission_classes", []))
    if classes == [AllowAny]:
        return PUBLIC
    if classes == [IsAuthenticated]:
        return AUTHENTICATED
    if classes == [HasPermission]:
        return declared_permission(view_class, method) or UNDECLARED
    return "+".join(c.__name__ for c in classes) or UNDECLARED


def endpoints(urlconf: str) -> list[Endpoint]:
    found = []
    for path, _regex, method, callback in EndpointEnumerator(urlconf=urlconf).get_api_endpoints():
        if not path.startswith("/api/v1/"):
            continue
        view_class = callback.cls
        found.append(Endpoint(method, path, endpoint_needs(view_class, method), view_class))
    return sorted(found, key=lambda e: (e.path, e.method))


def markdown_table(urlconf: str) -> str:
    rows = ["| method | path | needs |", "|---|---|---|"]
    rows += [f"| {e.method} | `{e.path}` | {e.needs} |" for e in endpoints(urlconf)]
    return "\n".join(rows)
