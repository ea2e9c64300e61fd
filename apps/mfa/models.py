"""Second factors (TOTP apps, WebAuthn keys), recovery codes and pending sign-ins.

In the public schema (platform operators) and in every tenant schema (its users),
like the accounts they belong to.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Factor(models.Model):
    """One second factor of a user. Counts only once confirmed (`confirmed_at`): a TOTP
    factor by its first correct code, a WebAuthn key by its registration. Unconfirmed ones
    are deleted by the daily cleanup."""

    class Kind(models.TextChoices):
        TOTP = "totp", "Authenticator app (TOTP)"
        WEBAUTHN = "webauthn", "Security key or passkey (WebAuthn)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_factors"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # TOTP: the shared secret as a Fernet token (apps/mfa/crypto.py), never in plain.
    secret = models.TextField(blank=True)
    # The time step of the last accepted code: a code of this step or an earlier one is
    # refused, so a code cannot be used twice within its window.
    last_used_step = models.BigIntegerField(null=True, blank=True)

    # WebAuthn (written by apps/mfa/webauthn.py).
    credential_id = models.BinaryField(null=True, blank=True, unique=True)
    public_key = models.BinaryField(null=True, blank=True)
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    # The registration challenge, until the key is confirmed.
    pending_challenge = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="mfa_factor_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """One single-use recovery code, stored as a keyed hash (apps/mfa/crypto.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_recovery_codes"
    )
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="mfa_recovery_code_uniq"),
        ]

    def __str__(self) -> str:
        return f"Recovery code of user {self.user_id}"


class MfaChallenge(models.Model):
    """A sign-in whose password checked out and that waits for a second factor (or, when the
    policy requires an enrolment that is overdue, for one). The client holds the random
    `mfa_token`; only its SHA-256 is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_challenges"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The user must enrol a factor first: the token may then only enrol and confirm one.
    enrolment_required = models.BooleanField(default=False)
    # The assertion challenge of a WebAuthn sign-in (written by apps/mfa/webauthn.py).
    webauthn_challenge = models.TextField(blank=True)
    # How the first factor was proved ("pwd"): the start of the session's `amr`.
    amr_first = models.CharField(max_length=16, default="pwd")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["expires_at"], name="mfa_challenge_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"Sign-in challenge of user {self.user_id}"
