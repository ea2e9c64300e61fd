"""The `tenant` label, bounded: a schema name only while there are few tenants."""

from __future__ import annotations

import sys
import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest

# How long a process trusts its count of tenants.
TENANT_COUNT_SECONDS = 300.0
ALL = "all"
NONE = "none"  # no tenant resolved (an unknown host, /metrics)

_lock = threading.Lock()
_counted: tuple[float, int] | None = None


def _tenant_count() -> int:
    """Active customer tenants, counted once per TENANT_COUNT_SECONDS in this process."""
    global _counted
    now = time.monotonic()
    counted = _counted
    if counted is not None and now - counted[0] < TENANT_COUNT_SECONDS:
        return counted[1]
    with _lock:
        from django_tenants.utils import get_tenant_model

        try:
            count = int(get_tenant_model().objects.customers().runnable().count())
        except DatabaseError:
            # The request was answered already; a label is no reason to fail it. Counted
            # as many (the bounded label) until the next look.
            count = sys.maxsize
        _counted = (now, count)
        return count


def tenant_count_forget() -> None:
    global _counted
    _counted = None


def tenant_label(request: HttpRequest) -> str:
    """The request's tenant (its schema name; `public` for the platform's host) when
    METRICS_TENANT_LABEL is on and fewer than METRICS_TENANT_LABEL_MAX tenants exist, else
    "all"; "none" when no tenant was resolved."""
    if not settings.METRICS_TENANT_LABEL:
        return ALL
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return NONE
    if _tenant_count() >= settings.METRICS_TENANT_LABEL_MAX:
        return ALL
    return str(tenant.schema_name)
