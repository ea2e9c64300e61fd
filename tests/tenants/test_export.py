"""Tenant export and import: the archive round trip, the commands, and the operators' API."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User, UserCount
from apps.accounts.services.users import user_create
from apps.audit.models import AuditEvent
from apps.core.tenancy import tenant_connection
from apps.notifications.models import (
    Delivery,
    DeviceSubscription,
    Notification,
    NotificationBatch,
    Preference,
)
from apps.organizations.models import Membership
from apps.rbac.models import Role, RoleAssignment
from apps.sso.crypto import secret_decrypt, secret_encrypt
from apps.sso.models import ExternalIdentity, IdentityProvider
from apps.tenants import archive_writer, exports, imports
from apps.tenants.archive import EXCLUDED_MODELS, EXPORTED_MODELS, tenant_app_labels
from apps.tenants.archive_writer import ArchiveSerializer, serialized_fields
from apps.tenants.models import Domain, Tenant, TenantExport
from apps.tenants.services import tenant_create
from apps.tenants.tasks import export_write_task
from tests.organizations.factories import org_create

PUBLIC = "localhost"
PASSWORD = "an-old-password-that-still-works"
SECRET = "client-secret-of-the-idp"


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Path) -> Path:
    settings.TENANT_EXPORT_DIR = tmp_path / "exports"
    return tmp_path / "exports"


def _source() -> Tenant:
    """A tenant holding a row of every kind an archive carries."""
    tenant = tenant_create(
        name="Source Corp", slug="source", admin_email="owner@source.test", admin_password=PASSWORD
    ).tenant
    tenant.settings = {"rate_limit": "300/m"}
    tenant.save(update_fields=["settings"])
    with tenant_context(tenant):
        owner = User.objects.get(email="owner@source.test")
        ann = user_create(email="ann@source.test", password=PASSWORD, full_name="Ann Lee")
        bob = user_create(email="bob@source.test", password=PASSWORD, username="bobby")
        gone = user_create(email="gone@source.test", password=PASSWORD)
        User.objects.filter(pk=gone.pk).update(is_deleted=True, deleted_at=timezone.now())

        company = org_create("Company")
        sales = org_create("Sales", company)
        emea = org_create("EMEA", sales)
        Membership.objects.create(organization=emea, user=ann, title="Lead")
        Membership.objects.create(organization=sales, user=bob)
        seller = Role.objects.create(
            name="Seller", permissions=["users.view", "organizations.view"]
        )
        RoleAssignment.objects.create(user=ann, role=seller, organization=sales, granted_by=owner)
        RoleAssignment.objects.create(user=bob, role=seller)

        group = Group.objects.create(name="Auditors")
        view_user = Permission.objects.get(codename="view_user", content_type__app_label="accounts")
        group.permissions.add(view_user)
        ann.groups.add(group)
        bob.user_permissions.add(view_user)
        LogEntry.objects.create(
            user=owner,
            content_type=ContentType.objects.get_for_model(User),
            object_id=str(bob.pk),
            object_repr=bob.email,
            action_flag=ADDITION,
            change_message="[]",
        )

        batch = NotificationBatch.objects.create(
            created_by=owner, type="announcement", title="Hello", audience={"users": [ann.pk]},
            status=NotificationBatch.Status.DONE, total_recipients=1, finished_at=timezone.now(),
        )  # fmt: skip
        note = Notification.objects.create(
            recipient=ann, type="announcement", title="Hello", batch=batch, read_at=timezone.now()
        )
        Delivery.objects.create(
            notification=note, channel="email", status=Delivery.Status.SENT, attempts=1,
            provider="smtp", sent_at=timezone.now(),
        )  # fmt: skip
        Preference.objects.create(user=ann, type="announcement", channel="sms", enabled=False)
        DeviceSubscription.objects.create(
            user=bob, endpoint="https://push.example.com/x", keys={"p256dh": "k", "auth": "a"}
        )

        provider = IdentityProvider.objects.create(
            slug="corp", name="Corp SSO", issuer="https://idp.example.com", client_id="platform",
            client_secret_encrypted=secret_encrypt(SECRET), jit_organization=sales,
            redirect_uris=["https://app.example.com/cb"],
        )  # fmt: skip
        provider.jit_roles.add(seller)
        provider.break_glass_users.add(owner)
        ExternalIdentity.objects.create(
            provider=provider, issuer=provider.issuer, subject="ann-1", user=ann, email=ann.email
        )
        AuditEvent.objects.create(
            actor=owner, actor_email=owner.email, action="role.created", target_type="role",
            target_id=str(seller.pk), changes={"name": "Seller"},
        )  # fmt: skip
    return tenant


def _rows(tenant: Tenant, label: str) -> list[dict[str, Any]]:
    """A model's rows as the archive writes them (natural keys for permissions)."""
    model = django_apps.get_model(label)
    with tenant_context(tenant):
        ContentType.objects.clear_cache()
        rows = ArchiveSerializer().serialize(
            model._base_manager.order_by("pk"), fields=serialized_fields(model)
        )
    ContentType.objects.clear_cache()
    return [json.loads(line) for line in rows.splitlines()]


def _export(tenant: Tenant, directory: Path) -> Path:
    return exports.tenant_export(tenant=tenant, destination=directory / "a.zip", actor=None).path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _rewrite(archive: Path, target: Path, **replace: Any) -> Path:
    """A copy of `archive` with some members replaced (bytes, or a dict for JSON)."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w") as copy:
        for info in source.infolist():
            data = replace.pop(info.filename, source.read(info))
            if data is None:
                continue
            copy.writestr(info.filename, json.dumps(data) if isinstance(data, dict) else data)
        for name, data in replace.items():
            copy.writestr(name, json.dumps(data) if isinstance(data, dict) else data)
    return target


def _manifest(archive: Path) -> dict[str, Any]:
    with zipfile.ZipFile(archive) as source:
        return dict(json.loads(source.read("manifest.json")))


# ------------------------------------------------------------------ what an archive is


def test_every_model_of_a_tenant_schema_is_exported_or_excluded_with_a_reason() -> None:
    labels = tenant_app_labels()
    models = {
        m._meta.label_lower
        for m in django_apps.get_models()
        if m._meta.app_label in labels and not m._meta.auto_created
    }
    assert set(EXPORTED_MODELS).isdisjoint(EXCLUDED_MODELS)
    assert models == set(EXPORTED_MODELS) | set(EXCLUDED_MODELS)
    assert all(reason for reason in EXCLUDED_MODELS.values())


@pytest.mark.django_db
def test_archive_holds_a_manifest_and_one_file_per_model(tmp_path: Path) -> None:
    source = _source()
    archive = _export(source, tmp_path)

    assert archive.stat().st_mode & 0o777 == 0o600
    manifest = _manifest(archive)
    assert manifest["format"] == "platform-tenant-archive"
    assert manifest["format_version"] == 1
    assert manifest["source"]["slug"] == "source"
    assert manifest["source"]["settings"] == {"rate_limit": "300/m"}
    assert "0001_initial" in manifest["migrations"]["accounts"]
    assert "tenants" not in manifest["migrations"]  # not a tenant app
    listed = {m["model"]: m for m in manifest["models"]}
    assert list(listed) == list(EXPORTED_MODELS)
    assert listed["accounts.user"]["count"] == 4
    with zipfile.ZipFile(archive) as opened:
        assert set(opened.namelist()) == {"manifest.json"} | {m["file"] for m in listed.values()}
        users = [json.loads(line) for line in opened.read("data/accounts.user.jsonl").splitlines()]
    assert "search_vector" not in users[0]["fields"]  # generated: the database computes it
    bob = next(u for u in users if u["fields"]["email"] == "bob@source.test")
    assert bob["fields"]["user_permissions"] == [["view_user", "accounts", "user"]]
    with tenant_context(source):
        assert AuditEvent.objects.filter(action="tenant.exported").count() == 0
    exported = AuditEvent.objects.get(action="tenant.exported")  # public schema
    assert exported.target_id == str(source.pk)
    assert exported.changes["counts"]["accounts.user"] == 4


@pytest.mark.django_db
def test_tables_are_read_a_page_at_a_time(tmp_path: Path, monkeypatch) -> None:
    # Whatever a table's size, the writer holds one page of it (no `.iterator()`: behind a
    # pooler in transaction mode that would read the whole table at once).
    monkeypatch.setattr(archive_writer, "_CHUNK_ROWS", 2)
    source = _source()
    with CaptureQueriesContext(connection) as queries:
        archive = _export(source, tmp_path)
    user_pages = [
        q["sql"] for q in queries if 'FROM "accounts_user"' in q["sql"] and "LIMIT 2" in q["sql"]
    ]
    assert len(user_pages) == 3  # 4 users: 2, 2, then an empty page
    copy = imports.tenant_import(archive_path=archive, slug="paged").tenant
    for label in EXPORTED_MODELS:
        assert _rows(copy, label) == _rows(source, label), label


# ------------------------------------------------------------------ the round trip


@pytest.mark.django_db
def test_round_trip_gives_the_same_rows_and_the_users_sign_in(
    tmp_path: Path, api: APIClient
) -> None:
    source = _source()
    archive = _export(source, tmp_path)

    result = imports.tenant_import(archive_path=archive, slug="copy")

    target = result.tenant
    assert target.slug == "copy" and target.schema_name == "copy" and target.name == "Source Corp"
    assert target.settings == {"rate_limit": "300/m"}
    assert Domain.objects.get(tenant=target).domain == "copy.localhost"
    assert result.notes == []
    for label in EXPORTED_MODELS:
        assert _rows(target, label) == _rows(source, label), label
    assert result.counts["accounts.user"] == 4
    with tenant_context(target):
        # Derived state follows the rows, and new ids follow the loaded ones.
        counts = {(c.is_deleted, c.is_active): c.count for c in UserCount.objects.all()}
        assert counts == {(False, True): 3, (True, True): 1}
        newcomer = user_create(email="new@copy.test", password=PASSWORD)
        assert newcomer.pk > User.objects.exclude(pk=newcomer.pk).order_by("-pk")[0].pk
        emea = Membership.objects.get(user__email="ann@source.test").organization
        sales = emea.parent
        assert sales is not None
        assert emea.path == f"/{sales.parent_id}/{sales.pk}/{emea.pk}/"
        assert secret_decrypt(IdentityProvider.objects.get().client_secret_encrypted) == SECRET
    imported = AuditEvent.objects.get(action="tenant.imported")  # public schema
    assert imported.target_id == str(target.pk)
    assert imported.changes["source"] == {"slug": "source", "schema_name": "source"}

    login = api.post(
        "/api/v1/auth/login",
        {"email": "ann@source.test", "password": PASSWORD},
        format="json",
        HTTP_HOST="copy.localhost",
    )
    assert login.status_code == 200, login.content
    token = login.json()["data"]["access_token"]
    me = api.get(
        "/api/v1/users/me", HTTP_HOST="copy.localhost", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert me.status_code == 200
    assert me.json()["data"]["email"] == "ann@source.test"


@pytest.mark.django_db
def test_tokens_of_the_old_tenant_are_refused_by_the_new_one(
    tmp_path: Path, api: APIClient
) -> None:
    source = _source()
    old = api.post(
        "/api/v1/auth/login",
        {"email": "ann@source.test", "password": PASSWORD},
        format="json",
        HTTP_HOST="source.localhost",
    ).json()["data"]
    tenant_connection().set_schema_to_public()  # where the request left it: the source's
    imports.tenant_import(archive_path=_export(source, tmp_path), slug="copy")

    me = api.get(
        "/api/v1/users/me",
        HTTP_HOST="copy.localhost",
        HTTP_AUTHORIZATION=f"Bearer {old['access_token']}",
    )
    assert me.status_code == 401
    refreshed = api.post(
        "/api/v1/auth/refresh",
        {"refresh_token": old["refresh_token"]},
        format="json",
        HTTP_HOST="copy.localhost",
    )
    assert refreshed.status_code == 401
    # Still good where they were issued.
    assert (
        api.get(
            "/api/v1/users/me",
            HTTP_HOST="source.localhost",
            HTTP_AUTHORIZATION=f"Bearer {old['access_token']}",
        ).status_code
        == 200
    )


@pytest.mark.django_db
def test_import_leaves_in_flight_work_to_the_source_and_clears_secrets_it_cannot_read(
    tmp_path: Path, settings: Any
) -> None:
    source = _source()
    with tenant_context(source):
        note = Notification.objects.create(
            recipient=User.objects.get(email="bob@source.test"), type="announcement", title="Hi"
        )
        pending = Delivery.objects.create(notification=note, channel="sms")
        NotificationBatch.objects.create(type="announcement", title="Later", audience={})
    archive = _export(source, tmp_path)
    settings.SSO_ENCRYPTION_KEY = "b" * 43 + "="  # another deployment's key

    result = imports.tenant_import(archive_path=archive, slug="copy")

    with tenant_context(result.tenant):
        copied = Delivery.objects.get(pk=pending.pk)
        assert copied.status == Delivery.Status.FAILED
        assert "exported from 'source'" in copied.last_error
        assert not NotificationBatch.objects.exclude(
            status__in=[NotificationBatch.Status.DONE, NotificationBatch.Status.FAILED]
        ).exists()
        assert IdentityProvider.objects.get().client_secret_encrypted == ""
    assert any("client secret" in note for note in result.notes)
    assert any("1 pending delivery" in note for note in result.notes)
    with tenant_context(source):
        assert Delivery.objects.get(pk=pending.pk).status == Delivery.Status.PENDING


# ------------------------------------------------------------------ the commands


@pytest.mark.django_db
def test_commands_round_trip(tmp_path: Path) -> None:
    _source()
    output = tmp_path / "source.zip"

    printed = run("tenant_export", "source", "--output", str(output))
    assert f"archive: {output}" in printed and "accounts.user: 4" in printed
    printed = run("tenant_import", str(output), "copy", "--name", "Copy Corp")

    assert "Tenant 'copy' imported from 'source'" in printed
    assert "host:   copy.localhost" in printed
    assert Tenant.objects.get(slug="copy").name == "Copy Corp"


@pytest.mark.django_db
def test_export_command_default_path_is_the_export_dir(_export_dir: Path) -> None:
    _source()
    printed = run("tenant_export", "source")
    written = list(_export_dir.glob("source-*.zip"))
    assert len(written) == 1 and str(written[0]) in printed
    assert _export_dir.stat().st_mode & 0o777 == 0o700


@pytest.mark.django_db
def test_export_command_refuses_unknown_slug_and_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No tenant with the slug 'nobody'") as unknown:
        run("tenant_export", "nobody")
    assert unknown.value.returncode == 1
    _source()
    taken = tmp_path / "there.zip"
    taken.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists already"):
        run("tenant_export", "source", "--output", str(taken))
    assert taken.read_bytes() == b"keep me"


def _nothing_imported() -> None:
    assert not Tenant.objects.filter(slug="copy").exists()
    assert not Domain.objects.filter(domain="copy.localhost").exists()
    assert not schema_exists("copy")
    assert not AuditEvent.objects.filter(action="tenant.imported").exists()


@pytest.mark.django_db
def test_import_command_refuses_a_taken_slug(tmp_path: Path, tenant_a) -> None:
    archive = _export(_source(), tmp_path)
    with pytest.raises(
        CommandError, match="CONFLICT: A tenant with this slug already exists"
    ) as taken:
        run("tenant_import", str(archive), "alpha")
    assert taken.value.returncode == 1
    with pytest.raises(CommandError, match=r"VALIDATION_ERROR.*slug: .*reserved"):
        run("tenant_import", str(archive), "admin")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "there is no file"),
        ("not_a_zip", "not a zip file"),
        ("truncated", "not a zip file"),
        ("no_manifest", "no manifest.json"),
        ("corrupt_data", "a data file is damaged"),
        ("altered_row", "not what its manifest says"),
        ("dropped_row", "not what its manifest says"),
        ("extra_file", "files its manifest does not list"),
        ("encrypted", "encrypted files"),
        ("bzip2", "compressed in a way this platform does not write"),
        ("newer_format", "format 2 by a newer version"),
        ("newer_migration", "newer version of the platform.*accounts.9999_future"),
        ("foreign_app", "newer version of the platform.*billing.0001_initial"),
        ("public_model", "rows of 'keys.signingkey'"),
        ("smuggled_row", "row 1 is not a row of accounts.user"),
        ("bad_value", "row 1 does not fit the model accounts.user"),
        ("dangling_reference", "refer to rows it does not hold"),
    ],
)
def test_import_command_refuses_a_bad_archive_and_changes_nothing(
    tmp_path: Path, damage: str, message: str
) -> None:
    good = _export(_source(), tmp_path)
    manifest = _manifest(good)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as opened:
        users = opened.read("data/accounts.user.jsonl")
        memberships = opened.read("data/organizations.membership.jsonl")
    first_user = json.loads(users.splitlines()[0])

    def with_manifest(**changes: Any) -> dict[str, Any]:
        return {**manifest, **changes}

    def users_as(lines: list[bytes]) -> Path:
        """The users' file made of these lines, its manifest entry made to match."""
        data = b"".join(line + b"\n" for line in lines)
        entry = next(m for m in manifest["models"] if m["model"] == "accounts.user")
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["count"] = len(lines)
        return _rewrite(good, bad, **{"data/accounts.user.jsonl": data, "manifest.json": manifest})

    def users_replaced(first: dict[str, Any]) -> Path:
        return users_as([json.dumps(first).encode(), *users.splitlines()[1:]])

    if damage == "missing":
        bad = tmp_path / "nowhere.zip"
    elif damage == "not_a_zip":
        bad.write_bytes(b"PK this is not an archive")
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[:-300])
    elif damage == "no_manifest":
        _rewrite(good, bad, **{"manifest.json": None})
    elif damage == "corrupt_data":
        # A byte of the users' compressed data flipped: the zip's own check (CRC) fails.
        data = bytearray(good.read_bytes())
        with zipfile.ZipFile(good) as opened:
            info = opened.getinfo("data/accounts.user.jsonl")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        data[start + info.compress_size // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
    elif damage == "altered_row":
        _rewrite(good, bad, **{"data/accounts.user.jsonl": users.replace(b"Ann Lee", b"Eve Lee")})
    elif damage == "dropped_row":
        _rewrite(
            good,
            bad,
            **{"data/organizations.membership.jsonl": memberships.splitlines()[0] + b"\n"},
        )
    elif damage == "extra_file":
        _rewrite(good, bad, **{"data/extra.jsonl": b""})
    elif damage == "encrypted":
        # zipfile writes no encrypted files: set the flag in the user file's directory entry.
        data = bytearray(good.read_bytes())
        entry = data.index(b"PK\x01\x02")
        while data[entry + 46 : entry + 46 + 24] != b"data/accounts.user.jsonl":
            entry = data.index(b"PK\x01\x02", entry + 4)
        data[entry + 8] |= 0x1
        bad.write_bytes(bytes(data))
    elif damage == "bzip2":
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(bad, "w") as copy:
            for name in source.namelist():
                info = zipfile.ZipInfo(name)
                if name == "data/accounts.user.jsonl":
                    info.compress_type = zipfile.ZIP_BZIP2
                copy.writestr(info, source.read(name))
    elif damage == "newer_format":
        _rewrite(good, bad, **{"manifest.json": with_manifest(format_version=2)})
    elif damage == "newer_migration":
        migrations = {**manifest["migrations"]}
        migrations["accounts"] = [*migrations["accounts"], "9999_future"]
        _rewrite(good, bad, **{"manifest.json": with_manifest(migrations=migrations)})
    elif damage == "foreign_app":
        migrations = {**manifest["migrations"], "billing": ["0001_initial"]}
        _rewrite(good, bad, **{"manifest.json": with_manifest(migrations=migrations)})
    elif damage == "public_model":
        models = [*manifest["models"], {**manifest["models"][0], "model": "keys.signingkey"}]
        _rewrite(good, bad, **{"manifest.json": with_manifest(models=models)})
    elif damage == "smuggled_row":
        # A valid token-verification key for the public schema, hidden among the users:
        # loaded, it would let whoever wrote the archive sign tokens for every tenant.
        key = {
            "model": "keys.signingkey", "pk": 4242,
            "fields": {
                "kid": "evil", "algorithm": "EdDSA", "public_key": "-----BEGIN PUBLIC KEY-----",
                "superseded_at": "2026-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z",
            },
        }  # fmt: skip
        users_as([json.dumps(key).encode(), *users.splitlines()])
    elif damage == "bad_value":
        users_replaced({**first_user, "fields": {**first_user["fields"], "is_active": "maybe"}})
    elif damage == "dangling_reference":
        users_replaced({**first_user, "fields": {**first_user["fields"], "groups": [424242]}})

    with pytest.raises(CommandError, match=message) as refused:
        run("tenant_import", str(bad), "copy")

    assert refused.value.returncode == 1
    assert str(refused.value).startswith("VALIDATION_ERROR: The archive cannot be imported: ")
    _nothing_imported()
    from apps.keys.models import SigningKey

    assert not SigningKey.objects.filter(kid="evil").exists()


@pytest.mark.django_db
def test_rows_are_loaded_where_only_the_new_tenants_tables_are_visible(tenant_a) -> None:
    # The second guard behind the row check: a platform table cannot be reached at all.
    from django.db import ProgrammingError, transaction

    from apps.keys.models import SigningKey

    list(SigningKey.objects.all())  # public: there
    with imports._tenant_schema_only(tenant_a.tenant):
        with pytest.raises(ProgrammingError, match='"keys_signingkey" does not exist'):
            with transaction.atomic():
                list(SigningKey.objects.all())
        assert User.objects.filter(email=tenant_a.admin_email).exists()
    list(SigningKey.objects.all())  # and back


@pytest.mark.django_db
def test_an_archive_from_older_code_loads_and_says_what_it_predates(tmp_path: Path) -> None:
    good = _export(_source(), tmp_path)
    manifest = _manifest(good)
    migrations = {**manifest["migrations"]}
    latest = migrations["accounts"][-1]
    migrations["accounts"] = migrations["accounts"][:-1]
    older = _rewrite(
        good, tmp_path / "older.zip", **{"manifest.json": {**manifest, "migrations": migrations}}
    )

    printed = run("tenant_import", str(older), "copy")

    assert f"Note: The archive predates 1 migration(s) of this code (accounts.{latest})" in printed
    assert Tenant.objects.filter(slug="copy").exists()


# ------------------------------------------------------------------ the operators' API


def _start(client: APIClient, tenant_id: int) -> Any:
    return client.post(f"/api/v1/tenants/{tenant_id}/exports", HTTP_HOST=PUBLIC)


@pytest.mark.django_db
def test_api_export_is_a_job_whose_archive_the_operator_downloads(
    operator_api: APIClient, operator: User, django_capture_on_commit_callbacks: Any, tmp_path: Path
) -> None:
    source = _source()
    with django_capture_on_commit_callbacks() as queued:
        started = _start(operator_api, source.pk)
    assert started.status_code == 202, started.content
    data = started.json()["data"]
    assert data["status"] == "queued" and data["archive_url"] is None
    assert data["tenant_id"] == source.pk and data["requested_by"] == operator.email
    assert len(queued) == 1
    export_id = data["id"]
    detail = f"/api/v1/tenants/{source.pk}/exports/{export_id}"
    early = operator_api.get(f"{detail}/archive", HTTP_HOST=PUBLIC)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "CONFLICT"

    assert export_write_task.apply(args=[export_id]).get() is True  # what the worker runs
    assert export_write_task.apply(args=[export_id]).get() is False  # done: a redelivery is a no-op

    shown = operator_api.get(detail, HTTP_HOST=PUBLIC).json()["data"]
    assert shown["status"] == "done"
    assert shown["counts"]["accounts.user"] == 4
    assert shown["archive_url"] == f"{detail}/archive"
    download = operator_api.get(
        shown["archive_url"], HTTP_HOST=PUBLIC, HTTP_ACCEPT="application/zip"
    )
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert "attachment" in download["Content-Disposition"]
    body = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    assert hashlib.sha256(body).hexdigest() == shown["sha256"]
    copy = tmp_path / "downloaded.zip"
    copy.write_bytes(body)
    assert imports.tenant_import(archive_path=copy, slug="copy").counts["accounts.user"] == 4

    exported = AuditEvent.objects.get(action="tenant.exported")
    assert exported.actor_id == operator.pk and exported.target_id == str(source.pk)
    downloaded = AuditEvent.objects.get(action="tenant.export_downloaded")
    assert downloaded.actor_id == operator.pk
    assert downloaded.changes["export_id"] == export_id


@pytest.mark.django_db
def test_api_export_404s(operator_api: APIClient, tenant_a, tenant_b) -> None:
    assert _start(operator_api, 999999).status_code == 404
    public = Tenant.objects.get(schema_name="public")
    assert _start(operator_api, public.pk).status_code == 404
    export = TenantExport.objects.create(tenant=tenant_a.tenant, tenant_slug="alpha")
    unknown = operator_api.get(
        f"/api/v1/tenants/{tenant_a.tenant.pk}/exports/00000000-0000-0000-0000-000000000000",
        HTTP_HOST=PUBLIC,
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    # Another tenant's export is not found under this one.
    for path in (f"exports/{export.pk}", f"exports/{export.pk}/archive"):
        other = operator_api.get(f"/api/v1/tenants/{tenant_b.tenant.pk}/{path}", HTTP_HOST=PUBLIC)
        assert other.status_code == 404


@pytest.mark.django_db
def test_api_export_is_for_operators_only(api: APIClient, tenant_a) -> None:
    export = TenantExport.objects.create(
        tenant=tenant_a.tenant, tenant_slug="alpha", status=TenantExport.Status.DONE
    )
    paths = [
        ("post", f"/api/v1/tenants/{tenant_a.tenant.pk}/exports"),
        ("get", f"/api/v1/tenants/{tenant_a.tenant.pk}/exports/{export.pk}"),
        ("get", f"/api/v1/tenants/{tenant_a.tenant.pk}/exports/{export.pk}/archive"),
    ]
    for method, path in paths:
        assert getattr(api, method)(path, HTTP_HOST=PUBLIC).status_code == 401
    someone = User.objects.create_user("someone@localhost", PASSWORD)  # public, not staff
    api.force_login(someone)
    for method, path in paths:
        refused = getattr(api, method)(path, HTTP_HOST=PUBLIC)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "FORBIDDEN"
    # A tenant's own owner, on the tenant's host: there is no such endpoint there.
    owner_client = APIClient()
    with tenant_context(tenant_a.tenant):
        owner_client.force_login(tenant_a.admin())
    for method, path in paths:
        assert getattr(owner_client, method)(path, HTTP_HOST=tenant_a.host).status_code == 404
    assert TenantExport.objects.count() == 1


@pytest.mark.django_db
def test_api_export_with_the_broker_down_fails_the_export_with_a_503(
    operator_api: APIClient, tenant_a, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    from kombu.exceptions import OperationalError

    from apps.core.errors import ServiceUnavailableError

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(export_write_task, "apply_async", broker_down)
    # The job is queued once the export's row is committed: at once outside a transaction
    # (a request), so the 503 is the request's answer; here, when the test's callbacks run.
    with pytest.raises(ServiceUnavailableError) as unavailable:
        with django_capture_on_commit_callbacks(execute=True):
            _start(operator_api, tenant_a.tenant.pk)

    assert unavailable.value.status_code == 503
    export = TenantExport.objects.get()
    assert export.status == TenantExport.Status.FAILED
    assert "job queue" in export.error


@pytest.mark.django_db
def test_an_export_being_written_is_not_written_twice_unless_its_run_was_lost(
    tenant_a, settings: Any
) -> None:
    export = TenantExport.objects.create(
        tenant=tenant_a.tenant,
        tenant_slug="alpha",
        status=TenantExport.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=60),
    )
    settings.TENANT_EXPORT_TIME_LIMIT = 600

    with pytest.raises(exports.ExportInProgress) as busy:
        exports.tenant_export_run(export_id=export.pk)
    assert 530 <= busy.value.retry_in <= 541  # when that run has ended or counts as lost
    export.refresh_from_db()
    assert export.status == TenantExport.Status.RUNNING and not export.file_name

    TenantExport.objects.filter(pk=export.pk).update(
        started_at=timezone.now() - timedelta(seconds=601)
    )
    assert exports.tenant_export_run(export_id=export.pk) is True
    export.refresh_from_db()
    assert export.status == TenantExport.Status.DONE
    assert (exports.export_dir() / export.file_name).is_file()


@pytest.mark.django_db
def test_times_keep_their_microseconds(tmp_path: Path) -> None:
    # Django's JSON encoder writes milliseconds: a row whose time has fewer than 1,000
    # microseconds came back from its archive changed.
    source = _source()
    with tenant_context(source):
        User.objects.filter(email="ann@source.test").update(
            last_login=timezone.now().replace(microsecond=500)
        )
    copy = imports.tenant_import(archive_path=_export(source, tmp_path), slug="precise").tenant
    with tenant_context(source):
        before = User.objects.get(email="ann@source.test").last_login
    with tenant_context(copy):
        after = User.objects.get(email="ann@source.test").last_login
    assert before is not None and before.microsecond == 500
    assert after == before
