from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http.request import validate_host

from apps.core.ratelimit import InvalidRate, Rate, parse_rate
from apps.mfa.policy import policy_errors

# A slug is one DNS label (the tenant's host is <slug>.<base domain>), so:
# lower-case letters, digits and single hyphens, starting with a letter.
SLUG_RE = re.compile(r"[a-z](?:[a-z0-9]|-(?!-)){0,38}[a-z0-9]")
SLUG_MAX_LENGTH = 40

# Host names and schema names a tenant may not take: they are the platform's
# own, PostgreSQL's, or too easily mistaken for either.
RESERVED_SLUGS = frozenset(
    {
        "public", "www", "admin", "api", "app", "apps", "auth", "login", "logout", "sso",
        "oidc", "oauth", "account", "accounts", "static", "media", "assets", "cdn", "mail",
        "email", "smtp", "imap", "pop", "ftp", "ns", "ns1", "ns2", "dns", "localhost",
        "root", "system", "platform", "status", "health", "docs", "help", "support",
        "billing", "dashboard", "console", "internal", "default", "template",
        "tenant-template", "information-schema", "postgres", "pg",
    }
)  # fmt: skip

MAX_SETTINGS_BYTES = 16_384


def schema_name_for(slug: str) -> str:
    return slug.replace("-", "_")


def slug_errors(slug: str) -> list[str]:
    if not slug:
        return ["This field is required."]
    if len(slug) > SLUG_MAX_LENGTH:
        return [f"At most {SLUG_MAX_LENGTH} characters."]
    if len(slug) < 2 or not SLUG_RE.fullmatch(slug):
        return [
            "Use 2 to 40 lower-case letters, digits and single hyphens, "
            "starting with a letter and not ending with a hyphen."
        ]
    schema = schema_name_for(slug)
    if (
        slug in RESERVED_SLUGS
        or schema in (settings.TENANT_TEMPLATE_SCHEMA, "public", "information_schema")
        or schema.startswith("pg_")
    ):
        return [f"'{slug}' is reserved."]
    return []


# One DNS label: letters, digits and inner hyphens (host names are stored lower-case).
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def hostname_errors(hostname: str, *, slug: str) -> list[str]:
    """What is wrong with `hostname` as a domain of the tenant `slug` (nothing: [])."""
    base = str(settings.PLATFORM_BASE_DOMAIN)
    own = f"{slug}.{base}"
    labels = hostname.split(".")
    if not hostname:
        return ["This field is required."]
    if len(hostname) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return ["Use a host name such as app.example.com (letters, digits, hyphens and dots)."]
    if labels[-1].isdigit():
        return ["Use a host name, not an IP address."]
    if hostname in {h.lower() for h in settings.PUBLIC_HOSTS} or hostname == base:
        return [f"'{hostname}' is the platform's own host."]
    if hostname.endswith(f".{base}") and hostname != own and not hostname.endswith(f".{own}"):
        # <other>.<base> is another tenant's host, now or once that slug is taken.
        return [f"Under {base}, a tenant has {own} and names ending in .{own} only."]
    if not validate_host(hostname, settings.ALLOWED_HOSTS):
        return [f"'{hostname}' is not in ALLOWED_HOSTS: add it there first, or it is refused."]
    return []


def settings_errors(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["Must be a JSON object."]
    if len(json.dumps(value)) > MAX_SETTINGS_BYTES:
        return [f"At most {MAX_SETTINGS_BYTES} bytes of JSON."]
    errors: list[str] = []
    rate = value.get("rate_limit")
    if rate is not None:
        try:
            if not isinstance(rate, str):
                raise InvalidRate("Use a text such as '600/m', '100/10s' or '5000/hour'.")
            parse_rate(rate)
        except InvalidRate as exc:
            errors.append(f"rate_limit: {exc}")
    if "mfa" in value:
        errors.extend(policy_errors(value["mfa"]))
    return errors


# Settings keys that relax a platform limit: only platform operators may set them looser
# than the platform's own value. `rate_limit` (the gateway's API rate, apps/core/ratelimit.py)
# is the only one today; a new key that relaxes a limit belongs in `loosening_errors`.


def _rate(value: Any) -> Rate | None:
    try:
        return parse_rate(str(value)) if value else None
    except InvalidRate:
        return None


def _looser(rate: Rate, than: Rate | None) -> bool:
    """Whether `rate` lets through more than `than` (None: no limit): more per window (a
    larger burst) or more per second on average. Over any span, a rate that is neither lets
    through no more than the other."""
    if than is None:
        return False
    return rate.limit > than.limit or rate.limit * than.window > than.limit * rate.window


def loosening_errors(value: Mapping[str, Any], *, current: Mapping[str, Any]) -> list[str]:
    """What in the (valid) settings `value` would relax a platform limit, for anyone but a
    platform operator: a `rate_limit` looser than the platform's API_RATE_LIMIT, unless it is
    no looser than the tenant's `current` one (an operator's grant may be kept or lowered)."""
    wanted = _rate(value.get("rate_limit"))
    if wanted is None:
        return []
    platform = _rate(settings.API_RATE_LIMIT)
    granted = _rate(current.get("rate_limit"))
    if not _looser(wanted, platform) or (granted is not None and not _looser(wanted, granted)):
        return []
    return [
        f"rate_limit: '{value['rate_limit']}' is looser than the platform's limit "
        f"({settings.API_RATE_LIMIT}); only platform operators may raise it."
    ]
