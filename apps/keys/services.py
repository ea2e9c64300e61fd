"""Every write to signing keys: create, rotate, retire. Always in the public schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.core.tenancy import public_schema
from apps.keys import keyring
from apps.keys.crypto import (
    ALGORITHM,
    jwk_thumbprint,
    private_key_encrypt,
    public_key_pem,
)
from apps.keys.keyring import Signer
from apps.keys.models import SigningKey

# pg_advisory_xact_lock id serialising key creation and rotation across processes.
_LOCK_ID = 0x6B657973  # "keys"


@contextmanager
def _locked() -> Iterator[None]:
    with schema_context(public_schema()), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        yield
        # This process sees the change at once (in the transaction), others on an unknown kid
        # or within SIGNING_KEYS_CACHE_SECONDS; again after commit in case it was read meanwhile.
        keyring.keyring_reset()
        transaction.on_commit(keyring.keyring_reset)


def grace_period() -> timedelta:
    """How long a superseded key still verifies: the longest lifetime of a token it signed,
    counting the tokens other processes sign with it until they re-read the key set."""
    from rest_framework_simplejwt import settings as simplejwt_settings

    api_settings = simplejwt_settings.api_settings  # replaced when SIMPLE_JWT changes
    access: timedelta = api_settings.ACCESS_TOKEN_LIFETIME
    refresh: timedelta = api_settings.REFRESH_TOKEN_LIFETIME
    leeway = api_settings.LEEWAY
    leeway = leeway if isinstance(leeway, timedelta) else timedelta(seconds=int(leeway or 0))
    stale = timedelta(seconds=settings.SIGNING_KEYS_CACHE_SECONDS)
    return max(access, refresh) + leeway + stale


def _signing_key_create(*, now: datetime) -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    return SigningKey.objects.create(
        kid=jwk_thumbprint(private_key.public_key()),
        algorithm=ALGORITHM,
        public_key=public_key_pem(private_key.public_key()),
        private_key_encrypted=private_key_encrypt(private_key),
        created_at=now,
        activated_at=now,
    )


def signing_key_ensure() -> SigningKey:
    """The key that signs, created on first use (a fresh install needs no manual step)."""
    with _locked():
        key = SigningKey.objects.filter(superseded_at=None, retired_at=None).first()
        return key or _signing_key_create(now=timezone.now())


def signing_key_rotate(*, now: datetime | None = None) -> SigningKey:
    """A new key signs from now on; the previous one verifies for the grace period, and keys
    whose grace has ended are retired."""
    now = now or timezone.now()
    with _locked():
        SigningKey.objects.filter(superseded_at=None, retired_at=None).update(
            superseded_at=now, not_after=now + grace_period()
        )
        key = _signing_key_create(now=now)
        signing_keys_retire_expired(now=now)
        return key


def signing_keys_retire_expired(*, now: datetime | None = None) -> list[str]:
    """Retire the keys past their grace (their tokens are already refused by `not_after`) and
    erase their private halves. Returns their kids."""
    now = now or timezone.now()
    with _locked():
        expired = SigningKey.objects.filter(retired_at=None, not_after__lte=now)
        kids = list(expired.values_list("kid", flat=True))
        expired.update(retired_at=now, private_key_encrypted="")
        return kids


def signing_key_list() -> list[SigningKey]:
    with schema_context(public_schema()):
        return list(SigningKey.objects.all())


def signer_get() -> Signer:
    """The key that signs now; created when there is none."""
    ring = keyring.keyring_fresh()
    if ring.signer is None:
        signing_key_ensure()
        # A key created inside a transaction that may still roll back is used for this
        # token but not remembered: the next call reads it again (or creates another).
        ring = keyring.keyring_reload(remember=not connection.in_atomic_block)
        if ring.signer is None:
            raise ImproperlyConfigured(
                "The signing key cannot be decrypted with JWT_KEY_ENCRYPTION_KEYS / SECRET_KEY "
                "(put the old secret back, or run manage.py rotate_signing_key)."
            )
    return ring.signer
