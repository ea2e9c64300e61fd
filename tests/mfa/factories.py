from __future__ import annotations

import pyotp
from django.utils import timezone

from apps.accounts.models import User
from apps.mfa.crypto import secret_encrypt
from apps.mfa.models import Factor


def totp_factor(user: User, *, name: str = "Phone", confirmed: bool = True) -> tuple[Factor, str]:
    """A TOTP factor of `user` (in the current schema) and its secret in plain."""
    secret = pyotp.random_base32()
    factor = Factor.objects.create(
        user=user,
        kind=Factor.Kind.TOTP,
        name=name,
        secret=secret_encrypt(secret),
        confirmed_at=timezone.now() if confirmed else None,
    )
    return factor, secret


def code_at(secret: str, *, offset_steps: int = 0) -> str:
    """The TOTP code of `secret` for the step `offset_steps` away from now."""
    totp = pyotp.TOTP(secret)
    return totp.at(timezone.now(), counter_offset=offset_steps)
