"""Writing a tenant's archive (the format: apps/tenants/archive.py): every exported model's
rows as JSON Lines, read as of one moment, each file hashed as it is written, and the
manifest last."""

from __future__ import annotations

import datetime
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
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.jsonl import Serializer as JSONLSerializer
from django.db import connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.errors import ValidationError
from apps.tenants.archive import (
    EXPORTED_MODELS,
    FORMAT_VERSION,
    MANIFEST,
    ArchivedModel,
    ArchivedTenant,
    Manifest,
    data_file,
    tenant_app_labels,
)
from apps.tenants.models import Tenant

_CHUNK_ROWS = 2000

# Referred to by natural key: their ids differ from schema to schema.
_BY_NATURAL_KEY: tuple[type[models.Model], ...] = (ContentType, Permission)


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


class _ArchiveJSONEncoder(DjangoJSONEncoder):
    """Django's encoder, but times keep their microseconds (Django's writes milliseconds:
    a row would come back from its archive a fraction of a millisecond older)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime | datetime.time):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)


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


def _pages(queryset: models.QuerySet[Any], size: int) -> Iterator[models.Model]:
    """The rows of `queryset` (ordered by pk) read `size` at a time, each page after the
    last pk of the one before: the memory of one page whatever the table's size. Not
    `.iterator()`: behind a pooler in transaction mode server-side cursors are off
    (DISABLE_SERVER_SIDE_CURSORS), and it would read the whole table at once."""
    last: Any = None
    while True:
        page = list((queryset if last is None else queryset.filter(pk__gt=last))[:size])
        yield from page
        if len(page) < size:
            return
        last = page[-1].pk


def _model_write(archive: zipfile.ZipFile, label: str) -> ArchivedModel:
    model = django_apps.get_model(label)
    name = data_file(label)
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
                counted(_pages(_model_queryset(model), _CHUNK_ROWS)),
                stream=text,
                fields=serialized_fields(model),
                cls=_ArchiveJSONEncoder,
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
