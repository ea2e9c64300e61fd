import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="SigningKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kid", models.CharField(max_length=64, unique=True)),
                ("algorithm", models.CharField(max_length=16)),
                ("public_key", models.TextField(help_text="PEM, SubjectPublicKeyInfo")),
                ("private_key_encrypted", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("activated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("superseded_at", models.DateTimeField(blank=True, null=True)),
                ("not_after", models.DateTimeField(blank=True, null=True)),
                ("retired_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-activated_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(
                            ("retired_at__isnull", True), ("superseded_at__isnull", True)
                        ),
                        fields=("algorithm",),
                        name="keys_one_signing_key_per_algorithm",
                    )
                ],
            },
        ),
    ]
