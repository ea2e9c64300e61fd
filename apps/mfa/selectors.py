"""What a user's second factors are, for sign-in and for their own listing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, QuerySet

from apps.mfa.models import Factor, RecoveryCode

if TYPE_CHECKING:
    from apps.accounts.models import User

RECOVERY_CODE = "recovery_code"


def factors_confirmed(user: User) -> QuerySet[Factor]:
    return Factor.objects.filter(user=user, confirmed_at__isnull=False)


def factor_list(*, user: User) -> QuerySet[Factor]:
    """The caller's own factors, confirmed or not (never another user's)."""
    return Factor.objects.filter(user=user).order_by("created_at")


def has_confirmed_factor() -> Exists:
    """`user_has_mfa` as an expression on users: `User.objects.annotate(has_mfa=...)`."""
    return Exists(Factor.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False))


def user_has_mfa(user: User) -> bool:
    """Whether sign-in asks `user` for a second factor. One query."""
    return factors_confirmed(user).exists()


def factor_kinds(user: User) -> list[str]:
    """What sign-in offers `user`: the kinds of their confirmed factors, then
    "recovery_code" while they have an unused one. One query; [] without a factor (recovery
    codes alone are no second factor)."""
    rows = list(
        factors_confirmed(user)
        .annotate(
            has_codes=Exists(RecoveryCode.objects.filter(user=OuterRef("user"), used_at=None))
        )
        .values_list("kind", "has_codes")
        .distinct()
    )
    if not rows:
        return []
    kinds = sorted({kind for kind, _ in rows}, key=[k.value for k in Factor.Kind].index)
    if any(has_codes for _, has_codes in rows):
        kinds.append(RECOVERY_CODE)
    return kinds


def recovery_codes_remaining(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at=None).count()
