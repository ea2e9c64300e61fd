"""The Celery app: tenant-aware (tenant-schemas-celery), configured from Django settings.

Every task message carries the schema it was sent from and runs in it. Tasks
that belong to a tenant use `apps.core.tasks.tenant_task`, which refuses to be
sent or run without one. Reliability settings (acks late, reject on worker
loss, prefetch 1, time limits, JSON only) are in settings/base.py.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery.signals import task_postrun, task_prerun
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.local")

app = CeleryApp("platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    from apps.core.tenancy import current_schema

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=getattr(task, "name", None), tenant=current_schema()
    )


@task_postrun.connect
def _clear_task_context(**kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()
