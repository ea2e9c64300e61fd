"""The public schema's own Tenant row: what `request.tenant` is on the platform's hosts."""

from django.db import migrations


def create_public_tenant(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    Tenant.objects.get_or_create(
        schema_name="public",
        defaults={"name": "Platform", "slug": "public", "settings": {}, "is_active": True},
    )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_public_tenant, migrations.RunPython.noop)]
