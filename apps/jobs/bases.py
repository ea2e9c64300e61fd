"""Task bases: every task knows its tenant, and a tenant task refuses to run without one.

The Celery app (platform_site/celery.py) is tenant-schemas-celery's, so every
task message carries the schema it was sent from and the worker switches to it
before the task runs. `tenant_task` adds the guard both ways: sending one from
the public schema raises at once, and a message that arrives without a tenant
(sent by hand, or by an older producer) fails instead of quietly running
against the public schema. A deactivated tenant's tasks are skipped.

Tenant tasks retry transient errors (apps/jobs/retries.py) with exponential
backoff, a bounded number of times; a task that fails for good is recorded as
a JobFailure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from celery import shared_task
from django_tenants.utils import get_public_schema_name, get_tenant_model
from tenant_schemas_celery.task import TenantTask

from apps.core.tenancy import current_schema, tenant_connection
from apps.jobs.retries import retry_options
from apps.jobs.run_flags import JOB_HEADER, request_header

logger = structlog.get_logger("apps.jobs.bases")


class TenantContextMissing(RuntimeError):
    pass


class TenantRequiredTask(TenantTask):
    abstract = True
    # A deactivated tenant's work waits for nobody: its tasks are skipped, not failed.
    runs_for_inactive_tenant = False
    # Work for an app that also lives in the public schema (apps.accounts: platform
    # operators) may run there too, sent from there (`tenant_task(..., allows_public=True)`).
    allows_public = False

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        headers = options.get("headers") or {}
        schema = headers.get("_schema_name") or current_schema()
        if self.allows_public and schema == get_public_schema_name():
            return super().apply_async(args, kwargs, **options)
        if not schema or schema == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} needs a tenant: send it from inside a tenant's schema "
                "(a request on a tenant host, or `with tenant_context(tenant):`)."
            )
        return super().apply_async(args, kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.allows_public and current_schema() == get_public_schema_name():
            return super().__call__(*args, **kwargs)
        if current_schema() == get_public_schema_name():
            raise TenantContextMissing(
                f"Task {self.name} received without a tenant; refusing to run."
            )
        if not self.runs_for_inactive_tenant and not self._tenant_is_active():
            logger.info("task_skipped_inactive_tenant", task=self.name, tenant=current_schema())
            return None
        return super().__call__(*args, **kwargs)

    def _tenant_is_active(self) -> bool:
        if request_header(self.request, JOB_HEADER):
            # A periodic run: read fresh, the worker's cached tenant may predate a deactivation.
            return (
                get_tenant_model()
                .objects.filter(schema_name=current_schema(), is_active=True)
                .exists()
            )
        # The worker's tenant object (cached for CELERY_TASK_TENANT_CACHE_SECONDS).
        tenant = getattr(tenant_connection(), "tenant", None)
        return getattr(tenant, "is_active", True) is not False


def tenant_task(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """`shared_task` for work that belongs to one tenant, retrying transient errors."""
    kwargs.setdefault("base", TenantRequiredTask)
    for option, value in retry_options().items():
        kwargs.setdefault(option, value)
    return shared_task(*args, **kwargs)
