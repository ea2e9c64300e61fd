"""The shape of a tenant's `settings["signup"]` (no models: apps.tenants' validators use it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_KEYS = {"enabled", "allowed_domains", "default_role"}


@dataclass(frozen=True)
class SignupSettings:
    enabled: bool = False
    allowed_domains: tuple[str, ...] = ()  # empty: any domain
    default_role: str = ""

    def allows(self, email: str) -> bool:
        domain = email.rpartition("@")[2]
        return not self.allowed_domains or domain in self.allowed_domains


def signup_settings_errors(value: Any) -> list[str]:
    """What is wrong with a tenant's `signup` setting (None or absent: off)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return ["signup: must be an object."]
    errors = [f"signup: unknown key {key!r}." for key in sorted(set(value) - _KEYS)]
    if not isinstance(value.get("enabled", False), bool):
        errors.append("signup.enabled: must be true or false.")
    domains = value.get("allowed_domains", [])
    if not isinstance(domains, list) or len(domains) > 100:
        errors.append("signup.allowed_domains: must be a list of at most 100 domains.")
    else:
        bad = [d for d in domains if not isinstance(d, str) or not _DOMAIN.fullmatch(d)]
        if bad:
            errors.append(
                f"signup.allowed_domains: not lower-case domain names: {', '.join(map(str, bad))}."
            )
    role = value.get("default_role", "")
    if not isinstance(role, str) or len(role) > 100:
        errors.append("signup.default_role: must be a role's name.")
    return errors
