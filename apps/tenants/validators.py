from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from apps.core.ratelimit import InvalidRate, parse_rate

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


def settings_errors(value: Any) -> list[str]:
    import json

    if not isinstance(value, Mapping):
        return ["Must be a JSON object."]
    if len(json.dumps(value)) > MAX_SETTINGS_BYTES:
        return [f"At most {MAX_SETTINGS_BYTES} bytes of JSON."]
    errors: list[str] = []
    rate = value.get("rate_limit")
    if rate is not None:
        try:
            parse_rate(str(rate))
        except InvalidRate as exc:
            errors.append(f"rate_limit: {exc}")
    return errors
