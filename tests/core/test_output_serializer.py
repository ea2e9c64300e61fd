"""OutputSerializer: fields bound once per class, the same output as DRF's Serializer."""

from __future__ import annotations

import copy
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
