"""A tenant's MFA policy: `Tenant.settings["mfa"]`, its validation and its reading.

    {"mode": "optional" | "required" | "required_for_permissions",
     "permissions": ["users.manage", ...],   # for required_for_permissions
     "grace_days": 7,                          # time to enrol once it applies
     "sso_amr_exempt": false,                  # (apps/sso: the provider's amr may count)
     "enforced_since": "<iso datetime>"}       # set by the service, never by the client

Optional by default (no "mfa" key). `enforced_since` is stamped by the tenant services
(`policy_stamped`) whenever the mode or the permission list changes, so a user's grace
period starts no earlier than the requirement does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from apps.rbac.catalogue import ALL_CODENAMES

OPTIONAL = "optional"
REQUIRED = "required"
REQUIRED_FOR_PERMISSIONS = "required_for_permissions"
MODES = (OPTIONAL, REQUIRED, REQUIRED_FOR_PERMISSIONS)
DEFAULT_GRACE_DAYS = 7
MAX_GRACE_DAYS = 90
_KEYS = frozenset({"mode", "permissions", "grace_days", "sso_amr_exempt", "enforced_since"})


@dataclass(frozen=True)
class MfaPolicy:
    mode: str = OPTIONAL
    permissions: frozenset[str] = frozenset()
    grace_days: int = DEFAULT_GRACE_DAYS
    sso_amr_exempt: bool = False
    enforced_since: datetime | None = None

    @property
    def is_optional(self) -> bool:
        return self.mode == OPTIONAL


def policy_errors(value: Any) -> list[str]:
    """What is wrong with `value` as the "mfa" tenant setting (nothing: [])."""
    if not isinstance(value, Mapping):
        return ["mfa: Must be a JSON object."]
    errors = [f"mfa.{key}: Unknown field." for key in sorted(set(value) - _KEYS)]
    mode = value.get("mode", OPTIONAL)
    if mode not in MODES:
        errors.append(f"mfa.mode: Use one of: {', '.join(MODES)}.")
    permissions = value.get("permissions", [])
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        errors.append("mfa.permissions: Must be a list of permission codenames.")
    else:
        if unknown := sorted(set(permissions) - ALL_CODENAMES):
            errors.append(f"mfa.permissions: Unknown permissions: {', '.join(unknown)}.")
        if mode == REQUIRED_FOR_PERMISSIONS and not permissions:
            errors.append("mfa.permissions: Name at least one permission for this mode.")
    grace = value.get("grace_days", DEFAULT_GRACE_DAYS)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_DAYS:
        errors.append(f"mfa.grace_days: A whole number from 0 to {MAX_GRACE_DAYS}.")
    if not isinstance(value.get("sso_amr_exempt", False), bool):
        errors.append("mfa.sso_amr_exempt: Must be true or false.")
    return errors


def policy_parse(value: Any) -> MfaPolicy:
    """The policy in a stored (validated) "mfa" setting; the default when absent."""
    if not isinstance(value, Mapping) or policy_errors(value):
        return MfaPolicy()
    since = value.get("enforced_since")
    return MfaPolicy(
        mode=str(value.get("mode", OPTIONAL)),
        permissions=frozenset(value.get("permissions", [])),
        grace_days=int(value.get("grace_days", DEFAULT_GRACE_DAYS)),
        sso_amr_exempt=bool(value.get("sso_amr_exempt", False)),
        enforced_since=parse_datetime(since) if isinstance(since, str) else None,
    )


def policy_stamped(
    new: Mapping[str, Any], *, old: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The "mfa" setting to store for the (valid) `new` one: `enforced_since` kept from `old`
    while the mode and the permissions stay as they were, else set to `now` (whatever the
    client sent: it is the service's)."""
    stamped = {key: value for key, value in new.items() if key != "enforced_since"}
    before = old if isinstance(old, Mapping) else {}
    same = before.get("mode", OPTIONAL) == stamped.get("mode", OPTIONAL) and sorted(
        before.get("permissions", [])
    ) == sorted(stamped.get("permissions", []))
    if stamped.get("mode", OPTIONAL) == OPTIONAL:
        return stamped
    if same and isinstance(before.get("enforced_since"), str):
        stamped["enforced_since"] = before["enforced_since"]
    else:
        stamped["enforced_since"] = now.isoformat()
    return stamped


def tenant_policy() -> MfaPolicy:
    """The policy of the tenant this connection serves (the default in the public schema:
    platform operators are not a tenant's users)."""
    tenant = getattr(connection, "tenant", None)
    tenant_settings = getattr(tenant, "settings", None)
    if not isinstance(tenant_settings, Mapping):
        return MfaPolicy()
    return policy_parse(tenant_settings.get("mfa"))


def settings_stamped(
    new: Mapping[str, Any], *, old: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """Tenant settings `new` (valid) as stored: their "mfa" policy stamped (`policy_stamped`)
    against the `old` settings' policy."""
    stamped = dict(new)
    if isinstance(stamped.get("mfa"), Mapping):
        before = (old or {}).get("mfa")
        stamped["mfa"] = policy_stamped(
            stamped["mfa"], old=before if isinstance(before, Mapping) else None, now=now
        )
    return stamped
