"""The tenant archive's format: one tenant's data as a zip file.

    manifest.json                  what the archive holds (below)
    data/<app>.<model>.jsonl       the rows of one model, one per line: Django's JSON Lines
                                   serialization (`{"model", "pk", "fields"}`)

Every model of the tenant's schema that holds the tenant's own data is written
(`EXPORTED_MODELS`), with its primary keys, so ids kept in free text (audit rows'
targets, a batch's audience, tree paths) stay true. Foreign keys are ids, except to
content types and permissions: those are written by natural key (app label, model,
codename), since each schema numbers them its own way. Left out, each for the reason
`EXCLUDED_MODELS` gives: sign-ins (refresh-token families, admin sessions, password-reset
links, SSO sign-ins in progress), the outbox and its consumed marks, cached counts, and
schema metadata every schema gets from its migrations.

The manifest holds the format and its version, the platform's version, when it was
written, the source tenant (id, slug, name, schema, settings), the migrations applied
to the source schema per tenant app, and per model its file, row count and SHA-256
(against damage, not forgery: whoever can write an archive can write its manifest).

Writing one: apps/tenants/archive_writer.py; reading one back: apps/tenants/archive_reader.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings

from apps.core.errors import ValidationError

ARCHIVE_FORMAT = "platform-tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 1_048_576


# What an archive holds, in the order it is loaded (parents first; foreign keys are
# checked at the end of the import's transaction anyway).
EXPORTED_MODELS: tuple[str, ...] = (
    "auth.group",
    "accounts.user",
    "organizations.organization",
    "organizations.membership",
    "rbac.role",
    "rbac.roleassignment",
    "audit.auditevent",
    "admin.logentry",
    "notifications.notificationbatch",
    "notifications.notification",
    "notifications.delivery",
    "notifications.preference",
    "notifications.devicesubscription",
    "sso.identityprovider",
    "sso.externalidentity",
    # Users keep their second factors (secrets encrypted, codes hashed: readable only with
    # the same JWT_KEY_ENCRYPTION_KEYS / SECRET_KEY); dropping them would end MFA silently.
    "mfa.factor",
    "mfa.recoverycode",
)

_METADATA = "schema metadata every schema gets from its migrations; referred to by natural key"
_SIGN_IN_IN_PROGRESS = "a sign-in in progress (minutes long), bound to the old host"
# Models of the tenant's schema an archive leaves out, and why. Many-to-many tables come
# with the model that declares the field (a user's groups, a provider's roles).
EXCLUDED_MODELS: dict[str, str] = {
    "contenttypes.contenttype": _METADATA,
    "auth.permission": _METADATA,
    "sessions.session": "the Django admin's browser sessions on the old host",
    "accounts.session": "refresh-token families: the old tenant's sign-ins do not carry over",
    "accounts.passwordresettoken": "single-use links mailed for the old host",
    "accounts.usercount": "derived: counted by triggers from the user rows as they are loaded",
    "jobs.outboxevent": "the old tenant's domain events: replayed here they would notify again",
    "jobs.consumedevent": "the marks of the events above",
    "jobs.jobfailure": "written in the public schema only",
    "core.pendinginvalidation": "written in the public schema only",
    "sso.loginstate": _SIGN_IN_IN_PROGRESS,
    "sso.exchangecode": _SIGN_IN_IN_PROGRESS,
    "mfa.mfachallenge": _SIGN_IN_IN_PROGRESS,
}


class ArchiveError(ValidationError):
    """The archive cannot be imported: not one, damaged, newer than this code, or unsafe."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"The archive cannot be imported: {problem}", details={"archive": [problem]}
        )


@dataclass(frozen=True)
class ArchivedModel:
    label: str
    file: str
    count: int
    sha256: str


@dataclass(frozen=True)
class ArchivedTenant:
    tenant_id: int
    slug: str
    name: str
    schema_name: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    format_version: int
    platform_version: str
    created_at: str
    source: ArchivedTenant
    migrations: dict[str, list[str]]
    models: list[ArchivedModel]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": ARCHIVE_FORMAT,
            "format_version": self.format_version,
            "platform_version": self.platform_version,
            "created_at": self.created_at,
            "source": {
                "tenant_id": self.source.tenant_id,
                "slug": self.source.slug,
                "name": self.source.name,
                "schema_name": self.source.schema_name,
                "settings": self.source.settings,
            },
            "migrations": self.migrations,
            "models": [
                {"model": m.label, "file": m.file, "count": m.count, "sha256": m.sha256}
                for m in self.models
            ],
            "excluded": EXCLUDED_MODELS,
        }

    @property
    def counts(self) -> dict[str, int]:
        return {m.label: m.count for m in self.models}


def tenant_app_labels() -> set[str]:
    """The labels of TENANT_APPS (entries name an app or its AppConfig class)."""
    labels = set()
    for config in django_apps.get_app_configs():
        config_path = f"{type(config).__module__}.{type(config).__qualname__}"
        if config.name in settings.TENANT_APPS or config_path in settings.TENANT_APPS:
            labels.add(config.label)
    return labels


def data_file(label: str) -> str:
    return f"data/{label}.jsonl"
