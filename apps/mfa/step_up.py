"""Step-up: a sensitive write wants a second factor verified a short while ago.

Password change, adding a further factor, factor removal, new recovery codes, role grants
and changes of a role's permissions, and identity-provider changes call
`step_up_require(request)` first thing. It lets the request
through when the user has no confirmed factor and the tenant's policy does not require one
of them (nothing to step up with), or when the access token says a second factor was
verified within MFA_STEP_UP_SECONDS: `amr` holds a second-factor value and `auth_time` is
that recent. Otherwise 403 MFA_REQUIRED; the client verifies a factor
(POST /api/v1/auth/mfa/verify with its bearer token: a new pair, same session, fresh
`auth_time`) and retries.

A request signed in by the admin's session cookie carries no such claims: it is refused
the same way when the user needs a step-up (the admin's own pages are not API writes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.accounts.tokens import Claims
from apps.core.errors import ForbiddenError
from apps.core.openapi import documented_error
from apps.mfa.policy import tenant_policy
from apps.mfa.selectors import user_has_mfa
from apps.mfa.services.requirement import sign_in_mfa

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request

    from apps.accounts.models import User

MFA_REQUIRED = "MFA_REQUIRED"
STEP_UP_MESSAGE = (
    "Confirm with your second factor (POST /api/v1/auth/mfa/verify) and retry; "
    "a factor verified in the last {window} is needed."
)
ENROL_FIRST_MESSAGE = (
    "Your organization requires a second factor for this: enrol one "
    "(POST /api/v1/auth/mfa/factors), confirm it, and retry."
)

SSO_AGAIN_MESSAGE = (
    "Sign in again through your organization's identity provider (its MFA counts for the "
    "{window} after signing in), or enrol a second factor (POST /api/v1/auth/mfa/factors), "
    "and retry."
)


def step_up_response(description: str = "") -> Any:
    """The 403 of a view that calls `step_up_require`, for its `extend_schema(responses=)`."""
    return documented_error(
        description
        or "Without the permission (FORBIDDEN), or without a second factor "
        "verified in the last MFA_STEP_UP_SECONDS (MFA_REQUIRED: verify one and retry)",
        codes=[MFA_REQUIRED],
    )


# RFC 8176 methods that are a factor beyond a password: possession (a one-time code, a
# hardware or software key, a smart card, a text or call to a phone) and inherence
# (biometrics), and "mfa" itself. Knowledge ("pwd", "pin", "kba") and signals that are no
# factor ("geo", "rba", "wia", "user", "mca") are not. An identity provider's `amr` counts
# only where the tenant trusts it (`sso_amr_exempt`): otherwise the session's `amr` holds
# "ext" alone (apps/sso/amr.py).
PROVIDER_SECOND_FACTOR_AMR = frozenset(
    {"mfa", "otp", "hwk", "swk", "sc", "sms", "tel", "fpt", "face", "iris", "retina", "vbm"}
)
# What the platform's own factors put in `amr` (apps.mfa.services.verify: "otp" for TOTP,
# "hwk" for WebAuthn, "rc" for a recovery code, a platform value outside RFC 8176).
SECOND_FACTOR_AMR = PROVIDER_SECOND_FACTOR_AMR | {"rc"}

# An `auth_time` this far ahead of our clock still counts (the issuing host's clock).
_CLOCK_SKEW_SECONDS = 60


def _claims_dict(claims: Claims | Mapping[str, Any]) -> Mapping[str, Any]:
    return claims.raw if isinstance(claims, Claims) else claims


def mfa_recent(
    claims: Claims | Mapping[str, Any], seconds: int, *, now: float | None = None
) -> bool:
    """Whether the token's `amr` names a second factor and its `auth_time` (when that
    factor, or the sign-in that included it, was verified) is at most `seconds` old."""
    raw = _claims_dict(claims)
    amr = raw.get("amr")
    if not isinstance(amr, list) or not any(
        isinstance(value, str) and value in SECOND_FACTOR_AMR for value in amr
    ):
        return False
    auth_time = raw.get("auth_time")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
        return False
    now = time.time() if now is None else now
    return now - seconds <= auth_time <= now + _CLOCK_SKEW_SECONDS


def _window_text(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return "minute" if minutes == 1 else f"{minutes} minutes"


def mfa_required_of(user: User) -> bool:
    """Whether the tenant's policy requires a second factor of `user` (within its grace
    period too; never of its break-glass accounts)."""
    return sign_in_mfa(user, has_mfa=False) is not None


def step_up_require(request: Request | HttpRequest, *, enrolling: bool = False) -> None:
    """403 MFA_REQUIRED unless the request's user needs no step-up or its access token
    shows a second factor within MFA_STEP_UP_SECONDS. Call it before the write (after the
    permission check, so someone without the permission still hears FORBIDDEN).

    `enrolling`: the write adds a factor. The first one is enrolled with the session the
    user has (it is what they step up with later, and what a tenant's policy tells them to
    enrol); a further one wants the step-up, or a stolen session could add an
    authenticator of its own and pass the second step with it from then on."""
    user = request.user
    if not getattr(user, "is_authenticated", False):
        return  # the view's permission class answers 401
    seconds = settings.MFA_STEP_UP_SECONDS
    claims = getattr(request, "auth", None)
    if isinstance(claims, Claims) and mfa_recent(claims, seconds):
        return  # no query: the common case of a client that just stepped up
    has_factor = user_has_mfa(user)  # type: ignore[arg-type]
    if not has_factor and (enrolling or not mfa_required_of(user)):  # type: ignore[arg-type]
        return
    if not has_factor:
        amr = claims.raw.get("amr") if isinstance(claims, Claims) else None
        if isinstance(amr, list) and "ext" in amr and tenant_policy().sso_amr_exempt:
            # Let in on their provider's MFA: a new sign-in there is their step-up.
            message = SSO_AGAIN_MESSAGE.format(window=_window_text(seconds))
        else:
            message = ENROL_FIRST_MESSAGE
        raise ForbiddenError(message, code=MFA_REQUIRED, details={"enrol": True})
    raise ForbiddenError(
        STEP_UP_MESSAGE.format(window=_window_text(seconds)),
        code=MFA_REQUIRED,
        details={"max_age_seconds": seconds},
    )
