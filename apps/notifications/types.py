"""Every notification type the platform sends: declared here, in code, and nowhere else.

The preferences matrix (`GET /api/v1/notifications/preferences`) is these types
times the channels; `notification_send()` and the templates (`templates/notifications/<type>/`)
key on the same names. A security type reaches the user whatever their
preferences, so it cannot be turned off; only non-security types can be sent
by people (`POST /api/v1/notifications/send`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotificationType:
    key: str
    description: str
    security: bool = False


_TYPES: tuple[NotificationType, ...] = (
    NotificationType("welcome", "Welcome to the platform, sent when your account is created."),
    NotificationType("announcement", "Announcements from your organization's administrators."),
    NotificationType(
        "security.password_changed",
        "Your password was changed or reset (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.new_sign_in",
        "A sign-in to your account from a new device or place (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.mfa_factor_added",
        "A second factor was added to your account (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.mfa_factor_removed",
        "A second factor was removed from your account (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.mfa_failed",
        "Someone got your password right but not your second factor (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.mfa_recovery_code_used",
        "A recovery code of your account was used to sign in (cannot be turned off).",
        security=True,
    ),
    NotificationType(
        "security.mfa_recovery_codes_regenerated",
        "New recovery codes were made for your account (cannot be turned off).",
        security=True,
    ),
)

NOTIFICATION_TYPES: dict[str, NotificationType] = {t.key: t for t in _TYPES}


def is_security_type(key: str) -> bool:
    found = NOTIFICATION_TYPES.get(key)
    return found is not None and found.security
