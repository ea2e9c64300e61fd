"""Reading a tenant's archive back (the format: apps/tenants/archive.py), all of it checked
before a row is written: the manifest's shape, each file against its count and checksum, and that every row is a row of its file's model (a row
naming another model would be written wherever that model's table is: for a platform
table, the public schema). An archive whose schema had a migration this code does not
have was written by newer code and is refused.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from django.core.serializers.base import DeserializationError
from django.core.serializers.python import Deserializer as PythonDeserializer
from django.db import DatabaseError, IntegrityError
from django.db.migrations.loader import MigrationLoader

from apps.tenants.archive import (
    ARCHIVE_FORMAT,
    EXPORTED_MODELS,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_MAX_BYTES,
    ArchivedModel,
    ArchivedTenant,
    ArchiveError,
    Manifest,
    data_file,
    tenant_app_labels,
)

# A row longer than this (one line of a data file) is refused on import.
ROW_MAX_BYTES = 32 * 1_048_576


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
        if entry.get("file") != data_file(label):
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
                f"{data_file(label)} row {number} is longer than {ROW_MAX_BYTES} bytes."
            )
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise ArchiveError(f"{data_file(label)} row {number} is not JSON.") from None
        if not isinstance(obj, dict) or obj.get("model") != label:
            raise ArchiveError(f"{data_file(label)} row {number} is not a row of {label}.")
        if not isinstance(obj.get("fields"), dict) or "pk" not in obj:
            raise ArchiveError(f"{data_file(label)} row {number} has no pk or fields.")
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
