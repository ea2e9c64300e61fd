"""Grants go stale on any change to a role, an assignment or the tree, however it is made
(service, admin, shell): bump the tenant's generation."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.organizations.models import Organization
from apps.rbac.grants import grants_changed
from apps.rbac.models import Role, RoleAssignment


@receiver(post_save, sender=Role)
@receiver(post_delete, sender=Role)
@receiver(post_save, sender=RoleAssignment)
@receiver(post_delete, sender=RoleAssignment)
@receiver(post_delete, sender=Organization)
def rbac_changed(sender: type, **kwargs: Any) -> None:
    grants_changed()
