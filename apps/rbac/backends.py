"""The tenant admin's permissions come from roles, as the API's do.

Django's admin asks `user.has_perm("audit.view_auditevent")` and the like; in a
tenant schema this backend answers from the user's grants, by the table below:
each admin page needs the permission its API needs, held everywhere (the admin
shows every row; it does not narrow lists to a subtree). A model missing from
the table is refused to everyone but the schema's superusers (fail closed), and
Django's own groups and per-user permissions count for nothing in a tenant
(`apps.accounts.backends.EmailBackend`). The public schema's admin (platform
operators) keeps Django's model permissions.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django_tenants.utils import get_public_schema_name

from apps.core.tenancy import current_schema
from apps.rbac.grants import user_grants

# model label -> (permission to view it, permission to add, change or delete it)
ADMIN_PERMISSIONS: dict[str, tuple[str, str]] = {
    "accounts.user": ("users.view", "users.manage"),
    "accounts.session": ("users.manage", "users.manage"),
    "audit.auditevent": ("audit.view", "audit.view"),
    "organizations.organization": ("organizations.view", "organizations.manage"),
    "organizations.membership": ("organizations.view", "organizations.manage"),
    "rbac.role": ("roles.view", "roles.manage"),
    "rbac.roleassignment": ("roles.view", "roles.manage"),
    "notifications.notification": ("notifications.send", "notifications.send"),
    "notifications.delivery": ("notifications.send", "notifications.send"),
    "notifications.notificationbatch": ("notifications.send", "notifications.send"),
    "invitations.invitation": ("users.manage", "users.manage"),
    # Users' own settings and devices, identity providers and the job machinery have no
    # API for anyone else: their pages are the owners'.
    "notifications.preference": ("tenant.manage", "tenant.manage"),
    "notifications.devicesubscription": ("tenant.manage", "tenant.manage"),
    "sso.identityprovider": ("tenant.manage", "tenant.manage"),
    "sso.externalidentity": ("tenant.manage", "tenant.manage"),
    "jobs.outboxevent": ("tenant.manage", "tenant.manage"),
    "jobs.jobfailure": ("tenant.manage", "tenant.manage"),
}

_ACTIONS = ("view", "add", "change", "delete")


def in_tenant_schema() -> bool:
    return current_schema() != get_public_schema_name()


def admin_permission_needed(perm: str) -> str | None:
    """The role permission a Django model permission ("app.action_model") stands for."""
    app_label, _, codename = perm.partition(".")
    action, _, model_name = codename.partition("_")
    needs = ADMIN_PERMISSIONS.get(f"{app_label}.{model_name}")
    if needs is None or action not in _ACTIONS:
        return None
    return needs[0] if action == "view" else needs[1]


class RolePermissionBackend(BaseBackend):
    """Answers the admin's permission questions in tenant schemas; authenticates nobody."""

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if not in_tenant_schema() or not getattr(user_obj, "is_active", False):
            return False
        if getattr(user_obj, "is_deleted", False):
            return False
        needed = admin_permission_needed(perm)
        if needed is None:
            return False

        return user_grants(user_obj).everywhere(needed)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return any(
            self.has_perm(user_obj, f"{app_label}.view_{label.partition('.')[2]}")
            for label in ADMIN_PERMISSIONS
            if label.partition(".")[0] == app_label
        )
