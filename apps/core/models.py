from __future__ import annotations

from django.db import models
from django.utils import timezone


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class PendingInvalidation(models.Model):
    """A cache invalidation Redis could not take when it was made (apps/core/invalidation.py).

    Always written in the public schema: one place to replay from, whichever tenant the
    invalidation belongs to (its key names the tenant). Applied before a new connection to
    Redis is used and by a periodic job, which then deletes it.
    """

    command = models.CharField(max_length=8)  # SET, DEL or INCR
    key = models.CharField(max_length=512)
    value = models.CharField(max_length=64, blank=True)
    seconds = models.PositiveIntegerField(null=True, blank=True)  # SET's expiry
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.command} {self.key}"
