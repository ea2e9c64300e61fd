"""OutputSerializer: fields bound once per class, the same output as DRF's Serializer."""

from __future__ import annotations

import copy
import uuid
import zoneinfo
from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework import serializers

from apps.accounts.models import User
from apps.accounts.serializers import UserOutput
from apps.core.serializers import OutputSerializer

# UserOutput's own declared fields on DRF's Serializer: the reference output (built from
# UserOutput, so a field added there is compared too).
PlainUserOutput: type[serializers.Serializer[User]] = type(
    "PlainUserOutput",
    (serializers.Serializer,),
    {"__module__": __name__, **copy.deepcopy(UserOutput._declared_fields)},
)


def _user(pk: int, **fields: Any) -> User:
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    values: dict[str, Any] = {
        "email": f"u{pk}@example.com",
        "username": f"u{pk}",
        "full_name": "Ann Lee",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "last_login": None,
        "created_at": moment,
        "updated_at": moment,
        "is_deleted": False,
        "deleted_at": None,
    }
    values.update(fields)
    return User(pk=pk, **values)


def test_the_output_is_drfs() -> None:
    users = [
        _user(1),
        _user(2, last_login=datetime(2026, 1, 1, tzinfo=UTC), is_staff=True, full_name=""),
        _user(3, is_deleted=True, deleted_at=datetime(2026, 2, 2, 1, 2, 3, tzinfo=UTC)),
    ]
    for user in users:
        assert UserOutput(user).data == PlainUserOutput(user).data
        assert list(UserOutput(user).data) == list(PlainUserOutput(user).data)  # key order
    many = PlainUserOutput(users, many=True).data  # type: ignore[arg-type]
    assert UserOutput(users, many=True).data == many  # type: ignore[arg-type]


def test_fields_are_bound_once_and_cannot_be_changed_per_instance() -> None:
    first, second = UserOutput(_user(1)), UserOutput(_user(2))
    assert first.fields["email"] is second.fields["email"]
    assert list(first.fields) == list(PlainUserOutput().fields)
    with pytest.raises(TypeError):
        first.fields["extra"] = serializers.CharField(read_only=True)  # type: ignore[index]
    with pytest.raises(TypeError):
        del first.fields["email"]  # type: ignore[attr-defined]


def test_a_subclass_gets_its_own_fields() -> None:
    class Wider(UserOutput):
        nickname = serializers.CharField(read_only=True, source="username")

    assert "nickname" in Wider(_user(1)).data
    assert "nickname" not in UserOutput(_user(1)).data
    assert Wider(_user(1)).data["nickname"] == "u1"


@pytest.mark.parametrize(
    "field",
    [
        serializers.SerializerMethodField(),
        PlainUserOutput(read_only=True),
        serializers.PrimaryKeyRelatedField(read_only=True),
        serializers.HyperlinkedRelatedField(view_name="x", read_only=True),
        serializers.CharField(),  # writable
        serializers.HiddenField(default=1),
    ],
    ids=lambda field: type(field).__name__,
)
def test_fields_that_depend_on_their_instance_are_refused(field: Any) -> None:
    with pytest.raises(TypeError):
        type("Bad", (OutputSerializer,), {"thing": field, "__module__": __name__})


def test_defaults_none_and_skipped_attributes_follow_drf() -> None:
    declared = {
        "name": lambda: serializers.CharField(read_only=True, source="missing", default="n/a"),
        "absent": lambda: serializers.CharField(read_only=True, source="nothing.here"),
        "nothing": lambda: serializers.CharField(read_only=True, allow_null=True),
    }
    ours = type("Ours", (OutputSerializer,), {k: make() for k, make in declared.items()})
    drfs = type("Drfs", (serializers.Serializer,), {k: make() for k, make in declared.items()})

    class Thing:
        nothing = None

    assert ours(Thing()).data == drfs(Thing()).data


@pytest.mark.django_db
def test_the_published_schema_has_no_description_from_the_base(api: Any, tenant_a: Any) -> None:
    from tests.core.test_openapi import fetch_schema

    published = fetch_schema(api, tenant_a.host)["components"]["schemas"]["UserOutput"]
    assert "description" not in published
    assert list(published["properties"]) == list(PlainUserOutput().fields)
    assert all(field["readOnly"] for field in published["properties"].values())
    assert published["properties"]["last_login"]["type"] == ["string", "null"]


# ------------------------------------------------------------------ the per-field fast paths


class _Many(OutputSerializer[Any]):
    text = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)
    slug = serializers.SlugField(read_only=True)
    url = serializers.URLField(read_only=True)
    number = serializers.IntegerField(read_only=True)
    flag = serializers.BooleanField(read_only=True)
    key = serializers.UUIDField(read_only=True)
    key_hex = serializers.UUIDField(read_only=True, format="hex", source="key")
    moment = serializers.DateTimeField(read_only=True, allow_null=True)
    year = serializers.DateTimeField(read_only=True, format="%Y", source="moment")
    in_paris = serializers.DateTimeField(
        read_only=True, default_timezone=zoneinfo.ZoneInfo("Europe/Paris"), source="moment"
    )
    blob = serializers.JSONField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    nested = serializers.CharField(read_only=True, source="inner.name")
    called = serializers.CharField(read_only=True)
    missing = serializers.CharField(read_only=True, default="fallback")
    gone = serializers.CharField(read_only=True, allow_null=True)


# The same declared fields on DRF's Serializer: the reference output.
_PlainMany: type[serializers.Serializer[Any]] = type(
    "_PlainMany",
    (serializers.Serializer,),
    {"__module__": __name__, **copy.deepcopy(_Many._declared_fields)},
)


class _Label(str):
    pass


class _Thing:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def called(self) -> str:
        return "from a method"

    @property
    def gone(self) -> str:
        raise User.DoesNotExist  # a reverse one-to-one without its row


def _things() -> list[Any]:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    inner = _Thing(name="inside")
    base = {
        "text": "plain", "email": "a@example.com", "slug": "a-b", "url": "https://x.test/",
        "number": 7, "flag": True, "key": key, "moment": datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
        "blob": {"a": [1, 2]}, "tags": ["x", "y"], "inner": inner,
    }  # fmt: skip
    variants: list[dict[str, Any]] = [
        {},
        {"moment": datetime(2026, 3, 4, 5, 6, 7, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))},
        {"moment": datetime(2026, 7, 1, 12, 0)},  # noqa: DTZ001  (naive: DRF makes it aware)
        {"moment": None, "flag": False, "number": 0, "text": ""},
        {"text": 5, "number": True, "flag": 1, "email": _Label("label@example.com")},
        {"text": None, "key": uuid.UUID(int=0)},
    ]
    things: list[Any] = [_Thing(**{**base, **variant}) for variant in variants]
    things.append({**base, "called": "in a mapping", "gone": None})  # a mapping: DRF's way
    return things


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_the_fast_readers_render_what_drf_renders(zone: str) -> None:
    from django.utils import timezone

    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for thing in _things():
            ours, drfs = _Many(thing).data, _PlainMany(thing).data
            assert ours == drfs, thing
            assert list(ours) == list(drfs)
        assert _Many(_things(), many=True).data == _PlainMany(_things(), many=True).data
