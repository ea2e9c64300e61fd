"""Task bases: every task knows its tenant, and a tenant task refuses to run without one.

The Celery app (platform_site/celery.py) is tenant-schemas-celery's, so every
task message carries the schema it was sent from and the worker switches to it
before the task runs. `tenant_task` adds the guard both ways: sending one from
the public schema raises at once, and a message that arrives without a tenant
(sent by hand, or by an older producer) fails instead of quietly running
against the public schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django_tenants.utils import get_public_schema_name
from tenant_schemas_celery.task import TenantTask

from apps.core.tenancy import current_schema


class TenantContextMissing(RuntimeError):
    pass


class TenantRequiredTask(TenantTask):
    abstract = True

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        headers = options.get("headers") or {}
        schema = headers.get("_schema_name") or current_schema()
        if not schema or schema == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} needs a tenant: send it from inside a tenant's schema "
                "(a request on a tenant host, or `with tenant_context(tenant):`)."
            )
        return super().apply_async(args, kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_schema() == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} received without a tenant; refusing to run."
            )
        return super().__call__(*args, **kwargs)


def tenant_task(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """`shared_task` for work that belongs to one tenant."""
    kwargs.setdefault("base", TenantRequiredTask)
    return shared_task(*args, **kwargs)


@shared_task(name="core.outbox_relay", ignore_result=True)
def outbox_relay_task() -> int:
    """Re-dispatch committed events that were never dispatched, in public and every active tenant."""
    from django_tenants.utils import schema_context

    from apps.core.events import outbox_relay
    from apps.tenants.selectors import tenant_schema_names

    sent = outbox_relay()
    for schema in tenant_schema_names(active_only=True):
        with schema_context(schema):
            sent += outbox_relay()
    return sent
