"""What a sign-in through an identity provider says about how the user authenticated.

Our session's `amr` (and its access tokens') starts with "ext": the user proved who they
are to an external provider. The provider's own `amr` values (RFC 8176, in its ID token)
follow when the tenant trusts them, i.e. its MFA policy has `sso_amr_exempt: true`. Then a
provider-asserted second factor ("mfa", "otp", "hwk", ... apps.mfa.step_up.
PROVIDER_SECOND_FACTOR_AMR) lets the user in without a platform factor, and counts as a
recent second factor for step-up until MFA_STEP_UP_SECONDS after the sign-in.

Otherwise the sign-in asks what a password sign-in would (apps/mfa/services/requirement.py):
a user with a platform factor, or whom the policy requires one of past the grace period,
answers the platform's challenge (POST /api/v1/auth/mfa/verify), and the session's `amr`
becomes ["ext", "otp"] (or "hwk", "rc").

Where the tenant does not trust them, the session's `amr` is ["ext"] alone: a provider's
"mfa" must not pass a step-up the tenant wants done with the platform's own factor. (The
values are still in the `auth.sso_login` event.)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from apps.mfa.policy import tenant_policy
from apps.mfa.selectors import user_has_mfa
from apps.mfa.services.requirement import SignInMfa, sign_in_mfa
from apps.mfa.step_up import PROVIDER_SECOND_FACTOR_AMR

if TYPE_CHECKING:
    from apps.accounts.models import User

EXTERNAL = "ext"
# An RFC 8176 value is a short token; anything else from a provider is dropped, and only
# so many are kept (they go into every access token of the session).
_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
_MAX_VALUES = 8


def provider_amr(claims: dict[str, Any]) -> list[str]:
    """The ID token's `amr` as a clean list (a provider sending one string is read as a
    list of one); [] when absent or malformed."""
    raw = claims.get("amr")
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    clean: list[str] = []
    for value in values:
        if isinstance(value, str) and _VALUE.fullmatch(value) and value not in clean:
            clean.append(value)
    return clean[:_MAX_VALUES]


def asserts_second_factor(values: list[str]) -> bool:
    return bool(PROVIDER_SECOND_FACTOR_AMR.intersection(values))


def provider_amr_trusted() -> bool:
    """Whether this tenant's MFA policy trusts its identity providers' `amr`."""
    return tenant_policy().sso_amr_exempt


def session_amr(values: list[str], *, trusted: bool) -> list[str]:
    """The `amr` of a session started by this sign-in: ["ext"], plus the provider's values
    when the tenant trusts them."""
    return [EXTERNAL, *(v for v in values if v != EXTERNAL)] if trusted else [EXTERNAL]


def second_step(user: User, session_amr: list[str]) -> SignInMfa | None:
    """What this sign-in asks of `user` beyond the provider: nothing when the session's
    `amr` holds a (trusted) provider second factor; else what a password sign-in would."""
    if asserts_second_factor(session_amr):
        return None
    return sign_in_mfa(user, has_mfa=user_has_mfa(user))
