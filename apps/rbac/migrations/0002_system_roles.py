"""The roles every tenant starts with. A migration, so the template schema holds
them and every tenant cloned from it starts with them; tenants that existed
before give the owner role to their superusers (the first admin of each)."""

from django.db import migrations
from django_tenants.utils import get_public_schema_name

# Frozen copy of apps.rbac.catalogue.SYSTEM_ROLES as of this migration.
ALL = [
    "audit.view",
    "notifications.send",
    "organizations.manage",
    "organizations.view",
    "roles.manage",
    "roles.view",
    "tenant.manage",
    "users.manage",
    "users.view",
]
ROLES = {
    "owner": ("Owns the tenant: every permission, now and in future.", ALL),
    "admin": (
        "Runs the tenant day to day: every permission but tenant.manage.",
        [p for p in ALL if p != "tenant.manage"],
    ),
    "member": ("Every user's baseline: sees the organization tree.", ["organizations.view"]),
}


def create_system_roles(apps, schema_editor):
    if schema_editor.connection.schema_name == get_public_schema_name():
        return
    Role = apps.get_model("rbac", "Role")
    RoleAssignment = apps.get_model("rbac", "RoleAssignment")
    User = apps.get_model("accounts", "User")
    for key, (description, permissions) in ROLES.items():
        Role.objects.update_or_create(
            system_key=key,
            defaults={"name": key, "description": description, "permissions": permissions},
        )
    owner = Role.objects.get(system_key="owner")
    for user in User.objects.filter(is_superuser=True, is_deleted=False):
        RoleAssignment.objects.get_or_create(user=user, role=owner, organization=None)


class Migration(migrations.Migration):
    dependencies = [("rbac", "0001_initial"), ("accounts", "0002_sessions_password_resets_search")]

    operations = [migrations.RunPython(create_system_roles, migrations.RunPython.noop)]
