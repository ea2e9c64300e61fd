"""The key pairs that sign platform tokens (a shared app: its table is in the public schema only)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class SigningKey(models.Model):
    # RFC 7638 thumbprint of the public JWK: the `kid` header of every token it signs.
    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=16)
    public_key = models.TextField(help_text="PEM, SubjectPublicKeyInfo")
    # Fernet token of the PKCS#8 PEM (see crypto.py); emptied when the key is retired.
    private_key_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(default=timezone.now)
    # When a newer key took over signing; tokens this one signed are accepted until not_after.
    superseded_at = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-activated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=Q(superseded_at__isnull=True, retired_at__isnull=True),
                name="keys_one_signing_key_per_algorithm",
            ),
        ]

    def __str__(self) -> str:
        return self.kid

    @property
    def is_signing(self) -> bool:
        return self.superseded_at is None and self.retired_at is None
