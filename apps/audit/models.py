from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One change made to the tenant's users, organizations, roles or assignments.

    Written by the service that makes the change, in its transaction; never
    changed or deleted through the API or the admin.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the actor's account is later purged; empty for the system (a task, a command).
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)  # e.g. "user.created", "role.assigned"
    target_type = models.CharField(max_length=64)  # e.g. "user", "organization", "role"
    target_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_idx"),
            models.Index(fields=["action", "occurred_at"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
