"""A fresh install signs tokens from the start with no manual step (the code also creates the
first key lazily, under a lock, if the table is ever empty)."""

from typing import Any

from django.db import migrations


def create_first_key(apps: Any, schema_editor: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apps.keys.crypto import ALGORITHM, jwk_thumbprint, private_key_encrypt, public_key_pem

    if getattr(schema_editor.connection, "schema_name", "public") != "public":
        return
    signing_key = apps.get_model("keys", "SigningKey")
    if signing_key.objects.filter(superseded_at=None, retired_at=None).exists():
        return
    private_key = Ed25519PrivateKey.generate()
    signing_key.objects.create(
        kid=jwk_thumbprint(private_key.public_key()),
        algorithm=ALGORITHM,
        public_key=public_key_pem(private_key.public_key()),
        private_key_encrypted=private_key_encrypt(private_key),
    )


class Migration(migrations.Migration):
    dependencies = [("keys", "0001_initial")]

    operations = [migrations.RunPython(create_first_key, migrations.RunPython.noop)]
