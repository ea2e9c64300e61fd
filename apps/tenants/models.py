from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name


class TenantQuerySet(models.QuerySet["Tenant"]):
    def customers(self) -> TenantQuerySet:
        """Real tenants: everything but the public schema's own row."""
        return self.exclude(schema_name=get_public_schema_name())

    def runnable(self) -> TenantQuerySet:
        """Tenants background work runs for: active and not deleted."""
        return self.filter(is_active=True, deleted_at__isnull=True)


class Tenant(TenantMixin):
    """A customer organisation: one PostgreSQL schema, reached at its domains.

    Schemas are created by `tenant_create` (cloned from the template schema
    inside the same transaction as this row), never by save(). `tenant_delete`
    sets `deleted_at` (and deactivates the tenant); the schema and the row are
    dropped TENANT_RETENTION_DAYS later, or at once when asked.
    """

    auto_create_schema = False
    auto_drop_schema = False

    # Annotated by hand: the base class comes from an untyped package, so the
    # Django mypy plugin cannot infer these.
    name: models.CharField[str, str] = models.CharField(max_length=200)
    slug: models.SlugField[str, str] = models.SlugField(max_length=63, unique=True)
    settings: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    is_active: models.BooleanField[bool, bool] = models.BooleanField(default=True)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now=True)
    # Set while the tenant is pending deletion: its schema is dropped once this is older
    # than TENANT_RETENTION_DAYS (tenants.purge_deleted), unless it is restored first.
    deleted_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True, db_index=True
    )
    schema_name: str

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_public(self) -> bool:
        return bool(self.schema_name == get_public_schema_name())

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def purge_after(self) -> datetime | None:
        """When the purge job may drop this tenant's schema (None unless pending deletion)."""
        if self.deleted_at is None:
            return None
        return self.deleted_at + timedelta(days=django_settings.TENANT_RETENTION_DAYS)


class Domain(DomainMixin):
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    domain: str
    is_primary: bool
    tenant: Tenant
    tenant_id: int

    class Meta:
        ordering = ["domain"]


class TenantExport(models.Model):
    """An archive of one tenant's data asked for by a platform operator (the API), written
    by a worker under TENANT_EXPORT_DIR (apps/tenants/exports.py). Kept when the tenant is
    dropped: the archive may be the only copy of its data left."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    tenant_slug = models.CharField(max_length=63)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # A platform operator (a user of the public schema).
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The archive's name inside TENANT_EXPORT_DIR, once written.
    file_name = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Rows per model ("accounts.user": 12, ...).
    counts = models.JSONField(default=dict, blank=True)
    # Why it failed, for the operator: never an exception's text (the worker's log has it).
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.tenant_slug} ({self.status})"
