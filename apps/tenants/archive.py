"""The tenant archive: one tenant's data as a zip file, written and read back.

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

Reading one back checks it all before a row is written: the manifest's shape, each file
against its count and checksum, and that every row is a row of its file's model (a row
naming another model would be written wherever that model's table is: for a platform
table, the public schema). An archive whose schema had a migration this code does not
have was written by newer code and is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.base import DeserializationError
from django.core.serializers.jsonl import Serializer as JSONLSerializer
from django.core.serializers.python import Deserializer as PythonDeserializer
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.errors import ValidationError
from apps.tenants.models import Tenant

ARCHIVE_FORMAT = "platform-tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 1_048_576
# A row longer than this (one line of a data file) is refused on import.
ROW_MAX_BYTES = 32 * 1_048_576
_CHUNK_ROWS = 2000

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
}

# Referred to by natural key: their ids differ from schema to schema.
_BY_NATURAL_KEY: tuple[type[models.Model], ...] = (ContentType, Permission)


class ArchiveError(ValidationError):
    """The archive cannot be imported: not one, damaged, newer than this code, or unsafe."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"The archive cannot be imported: {problem}", details={"archive": [problem]}
        )


# ------------------------------------------------------------------ writing


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


@dataclass(frozen=True)
class ArchiveWritten:
    path: Path
    size: int
    sha256: str
    manifest: Manifest


def platform_version() -> str:
    try:
        return metadata.version("platform-enterprise")
    except metadata.PackageNotFoundError:
        return "unknown"


def tenant_app_labels() -> set[str]:
    """The labels of TENANT_APPS (entries name an app or its AppConfig class)."""
    labels = set()
    for config in django_apps.get_app_configs():
        config_path = f"{type(config).__module__}.{type(config).__qualname__}"
        if config.name in settings.TENANT_APPS or config_path in settings.TENANT_APPS:
            labels.add(config.label)
    return labels


def _data_file(label: str) -> str:
    return f"data/{label}.jsonl"


class ArchiveSerializer(JSONLSerializer):
    """Django's JSON Lines, with references to content types and permissions by natural key
    and every other reference by id (a user's natural key, the e-mail, is unique among live
    users only)."""

    def handle_fk_field(self, obj: models.Model, field: Any) -> None:
        self.use_natural_foreign_keys = issubclass(field.related_model, _BY_NATURAL_KEY)
        super().handle_fk_field(obj, field)

    def handle_m2m_field(self, obj: models.Model, field: Any) -> None:
        self.use_natural_foreign_keys = issubclass(field.related_model, _BY_NATURAL_KEY)
        super().handle_m2m_field(obj, field)


class _Hashing(io.RawIOBase):
    """Bytes on their way into an archive member, hashed as they pass."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.sha256.update(b)
        self._raw.write(b)
        return len(b)


def serialized_fields(model: type[models.Model]) -> list[str]:
    # Generated columns are the database's to compute, on import too.
    opts = model._meta
    return [
        f.name
        for f in (*opts.local_fields, *opts.local_many_to_many)
        if not getattr(f, "generated", False)
    ]


def _model_queryset(model: type[models.Model]) -> models.QuerySet[Any]:
    """All rows in id order, with what their natural keys read loaded up front."""
    opts = model._meta
    queryset = model._base_manager.order_by("pk")
    natural_fks = [
        f.name
        for f in opts.local_fields
        if f.is_relation and issubclass(f.related_model, _BY_NATURAL_KEY)  # type: ignore[arg-type]
    ]
    if natural_fks:
        queryset = queryset.select_related(*natural_fks)
    prefetch = []
    for m2m in opts.local_many_to_many:
        prefetch.append(m2m.name)
        if m2m.related_model is Permission:
            prefetch.append(f"{m2m.name}__content_type")
    return queryset.prefetch_related(*prefetch) if prefetch else queryset


def _model_write(archive: zipfile.ZipFile, label: str) -> ArchivedModel:
    model = django_apps.get_model(label)
    name = _data_file(label)
    count = 0

    def counted(rows: Iterator[models.Model]) -> Iterator[models.Model]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    with archive.open(name, "w", force_zip64=True) as raw:
        hashing = _Hashing(raw)
        buffered = io.BufferedWriter(hashing, buffer_size=65_536)
        with io.TextIOWrapper(buffered, encoding="utf-8", newline="\n") as text:
            ArchiveSerializer().serialize(
                counted(_model_queryset(model).iterator(chunk_size=_CHUNK_ROWS)),
                stream=text,
                fields=serialized_fields(model),
            )
    return ArchivedModel(label=label, file=name, count=count, sha256=hashing.sha256.hexdigest())


def _applied_migrations() -> dict[str, list[str]]:
    """The migrations applied to the current schema, for the tenant's apps."""
    labels = tenant_app_labels()
    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        if app in labels:
            applied.setdefault(app, []).append(name)
    return applied


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """Every table read as of one moment, so rows written meanwhile cannot leave a
    reference dangling (a membership read after its user was not). Inside a caller's
    transaction, that transaction's snapshot rules."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def archive_write(*, tenant: Tenant, destination: Path) -> ArchiveWritten:
    """Write the archive of `tenant` to `destination` (readable by its owner only).

    Written beside it under a temporary name and renamed when complete: `destination`
    is either the whole archive or absent, and a second writer never mixes with the first.
    """
    if tenant.is_public:
        raise ValidationError("The platform's own schema is not a tenant's to export.")
    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            with _one_snapshot(), tenant_context(tenant):
                migrations = _applied_migrations()
                written = [_model_write(archive, label) for label in EXPORTED_MODELS]
            manifest = Manifest(
                format_version=FORMAT_VERSION,
                platform_version=platform_version(),
                created_at=timezone.now().isoformat(),
                source=ArchivedTenant(
                    tenant_id=tenant.pk,
                    slug=tenant.slug,
                    name=tenant.name,
                    schema_name=tenant.schema_name,
                    settings=dict(tenant.settings),
                ),
                migrations=migrations,
                models=written,
            )
            archive.writestr(MANIFEST, json.dumps(manifest.as_json(), indent=2))
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    size, sha256 = file_digest(destination)
    return ArchiveWritten(path=destination, size=size, sha256=sha256, manifest=manifest)


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(1_048_576):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# ------------------------------------------------------------------ reading


def manifest_read(archive: zipfile.ZipFile) -> Manifest:
    """The archive's manifest, checked, with the archive's members checked against it."""
    for info in archive.infolist():
        if info.flag_bits & 0x1:
            raise ArchiveError("it holds encrypted files.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError("it holds files compressed in a way this platform does not write.")
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise ArchiveError("it has no manifest.json: not a tenant archive.") from None
    with archive.open(info) as member:
        raw = member.read(MANIFEST_MAX_BYTES + 1)
    if len(raw) > MANIFEST_MAX_BYTES:
        raise ArchiveError("its manifest is too large.")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ArchiveError("its manifest is not JSON.") from None
    if not isinstance(data, dict) or data.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError("its manifest is not a tenant archive's.")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError("its manifest has no valid format_version.")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"it was written in format {version} by a newer version of the platform "
            f"(this one reads format {FORMAT_VERSION} and older)."
        )
    source = data.get("source")
    if not (
        isinstance(source, dict)
        and isinstance(source.get("tenant_id"), int)
        and all(isinstance(source.get(k), str) for k in ("slug", "name", "schema_name"))
        and isinstance(source.get("settings"), dict)
    ):
        raise ArchiveError("its manifest does not describe the source tenant.")
    migrations = data.get("migrations")
    if not (
        isinstance(migrations, dict)
        and all(
            isinstance(names, list) and all(isinstance(n, str) for n in names)
            for names in migrations.values()
        )
    ):
        raise ArchiveError("its manifest has no valid migration state.")
    entries = data.get("models")
    if not isinstance(entries, list):
        raise ArchiveError("its manifest lists no models.")
    models_: list[ArchivedModel] = []
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("model"), str)
            and isinstance(entry.get("count"), int)
            and entry["count"] >= 0
            and isinstance(entry.get("sha256"), str)
            and len(entry["sha256"]) == 64
        ):
            raise ArchiveError("its manifest has an invalid model entry.")
        label = entry["model"]
        if label not in EXPORTED_MODELS:
            raise ArchiveError(f"it holds rows of '{label[:100]}', which an import does not load.")
        if entry.get("file") != _data_file(label):
            raise ArchiveError(f"its manifest names an unexpected file for {label}.")
        models_.append(ArchivedModel(label, entry["file"], entry["count"], entry["sha256"]))
    labels = [m.label for m in models_]
    if len(set(labels)) != len(labels):
        raise ArchiveError("its manifest lists a model twice.")
    expected = {MANIFEST, *(m.file for m in models_)}
    present = set(archive.namelist())
    if missing := sorted(expected - present):
        raise ArchiveError(f"it lacks {', '.join(missing)}.")
    if extra := sorted(present - expected):
        raise ArchiveError(f"it holds files its manifest does not list ({len(extra)}).")
    # Loaded in this code's order, whatever the manifest's.
    models_.sort(key=lambda m: EXPORTED_MODELS.index(m.label))
    return Manifest(
        format_version=version,
        platform_version=str(data.get("platform_version", "")),
        created_at=str(data.get("created_at", "")),
        source=ArchivedTenant(
            tenant_id=source["tenant_id"],
            slug=source["slug"],
            name=source["name"],
            schema_name=source["schema_name"],
            settings=source["settings"],
        ),
        migrations=migrations,
        models=models_,
    )


def migrations_behind(recorded: dict[str, list[str]]) -> list[str]:
    """The migrations of this code the archive's schema had not applied; refuses an archive
    whose schema had one this code does not have (it was written by newer code)."""
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    labels = tenant_app_labels()
    unknown = sorted(
        f"{app}.{name}"
        for app, names in recorded.items()
        for name in names
        if app not in labels or (app, name) not in known
    )
    if unknown:
        shown = ", ".join(s[:100] for s in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise ArchiveError(
            "it was written by a newer version of the platform: its schema had migrations "
            f"this code does not have ({shown})."
        )
    return sorted(
        f"{app}.{name}"
        for app, name in known
        if app in labels and name not in recorded.get(app, [])
    )


def _rows(member: IO[bytes], label: str, digest: Any) -> Iterator[dict[str, Any]]:
    """The objects of one data file, checked to be rows of `label` before Django sees them:
    a row naming another model would be written wherever that model's table is, which for
    a platform table is the public schema."""
    number = 0
    while line := member.readline(ROW_MAX_BYTES + 1):
        number += 1
        digest.update(line)
        if len(line) > ROW_MAX_BYTES:
            raise ArchiveError(
                f"{_data_file(label)} row {number} is longer than {ROW_MAX_BYTES} bytes."
            )
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise ArchiveError(f"{_data_file(label)} row {number} is not JSON.") from None
        if not isinstance(obj, dict) or obj.get("model") != label:
            raise ArchiveError(f"{_data_file(label)} row {number} is not a row of {label}.")
        if not isinstance(obj.get("fields"), dict) or "pk" not in obj:
            raise ArchiveError(f"{_data_file(label)} row {number} has no pk or fields.")
        yield obj


def model_load(archive: zipfile.ZipFile, entry: ArchivedModel, *, lenient: bool) -> int:
    digest = hashlib.sha256()
    loaded = 0
    with archive.open(entry.file) as member:
        objects = PythonDeserializer(_rows(member, entry.label, digest), ignorenonexistent=lenient)
        try:
            for item in objects:
                item.save(force_insert=True)
                loaded += 1
        except (DeserializationError, ValueError, TypeError, LookupError):
            # Not the exception's text: it quotes the offending value (a hash, say).
            raise ArchiveError(
                f"{entry.file} row {loaded + 1} does not fit the model {entry.label}."
            ) from None
        except IntegrityError as exc:
            raise ArchiveError(
                f"{entry.file} row {loaded + 1} breaks {constraint_name(exc)}."
            ) from None
        except DatabaseError:
            raise ArchiveError(
                f"{entry.file} row {loaded + 1} has a value the database refuses."
            ) from None
    if loaded != entry.count or digest.hexdigest() != entry.sha256:
        raise ArchiveError(f"{entry.file} is not what its manifest says (damaged or altered).")
    return loaded


def constraint_name(exc: IntegrityError) -> str:
    name = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    return f"the constraint {name}" if name else "a constraint"
