from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower


class Role(models.Model):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    permissions = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    # owner, admin or member for the roles every tenant starts with; they cannot be deleted.
    system_key = models.CharField(max_length=20, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(Lower("name"), name="rbac_role_name_uniq")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_system(self) -> bool:
        return self.system_key is not None


class RoleAssignment(models.Model):
    """`user` holds `role`: everywhere, or only in `organization` and its descendants."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_assignments"
    )
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_assignments",
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "organization"],
                name="rbac_assignment_uniq",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        # Names, not ids (the admin's titles, messages and history): load user, role and
        # organization with the row where many are shown.
        where = f" in {self.organization.name}" if self.organization else " everywhere"
        return f"{self.user.email}: {self.role.name}{where}"
