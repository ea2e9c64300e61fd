"""Identity providers of a tenant, the external identities linked to its users, and the
short-lived records of a sign-in in progress (state, one-time code)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def default_scopes() -> list[str]:
    return ["openid", "email", "profile"]


class IdentityProvider(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    # Fernet token (apps/sso/crypto.py); the API never returns it.
    client_secret_encrypted = models.TextField(blank=True, default="")
    scopes = models.JSONField(default=default_scopes)
    claim_email = models.CharField(max_length=100, default="email")
    claim_name = models.CharField(max_length=100, default="name")
    claim_username = models.CharField(max_length=100, default="preferred_username")
    # Lower-case domains; empty: any domain.
    allowed_email_domains = models.JSONField(default=list, blank=True)
    allow_email_linking = models.BooleanField(default=False)
    jit_enabled = models.BooleanField(default=False)
    jit_roles = models.ManyToManyField("rbac.Role", blank=True, related_name="+")
    jit_organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sso_required = models.BooleanField(default=False)
    # Accounts still allowed to use a password while SSO is required (the owners' way back in).
    break_glass_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+"
    )
    # Where the client may be sent back to (exact match).
    redirect_uris = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    # The provider's discovery document as last fetched and checked.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ExternalIdentity(models.Model):
    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="identities"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    email = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "issuer", "subject"], name="sso_identity_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class LoginState(models.Model):
    """One authorization request: single use, short-lived."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=100, unique=True)
    nonce = models.CharField(max_length=100)
    code_verifier = models.CharField(max_length=128)
    # The client's redirect URI; for a sign-in to the Django admin, the admin path to go to.
    redirect_uri = models.CharField(max_length=1000)
    for_admin = models.BooleanField(default=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class ExchangeCode(models.Model):
    """The one-time code a client trades for our token pair (only its hash is kept)."""

    code_hash = models.CharField(max_length=64, unique=True)
    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The ID token's `amr` (apps/sso/amr.py decides what the session keeps of it).
    provider_amr = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"
