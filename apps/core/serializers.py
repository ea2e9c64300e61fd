from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from django.utils import timezone
from rest_framework import ISO_8601, relations, serializers
from rest_framework.fields import Field, SkipField
from rest_framework.utils.serializer_helpers import BindingDict


class InputSerializer(serializers.Serializer[Any]):
    """Input parsing that refuses what it does not know.

    A misspelt or read-only field is a 422 naming it, rather than being
    silently ignored while the client believes it was applied.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown or read-only field."] for name in unknown}
                )
        return super().to_internal_value(data)


def validated(
    serializer_class: type[serializers.Serializer[Any]], data: Any, **kwargs: Any
) -> dict[str, Any]:
    """Parse `data` with `serializer_class`; invalid input raises (422 in the envelope)."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


_Instance = TypeVar("_Instance")


class OutputSerializer(serializers.Serializer[_Instance]):
    # Output of plain read-only fields, bound once per class instead of once per instance.
    #
    # DRF deep-copies and binds every declared field each time a serializer is
    # made (so one instance may change its fields without affecting others);
    # for a response of a dozen fields that was most of the serializer's cost.
    # Plain fields hold no per-instance state once bound (their source and name),
    # so here they are bound once, to a prototype of the class, and shared,
    # read-only (`fields` cannot be changed per instance).
    #
    # Only fields that cannot depend on the instance they are bound to are
    # accepted, checked when the class is defined: read-only, not a nested
    # serializer, not a SerializerMethodField (it calls its parent), not a
    # related field (hyperlinks need the request from the context), not hidden.
    # Anything else belongs on a plain `serializers.Serializer`.
    # (A comment, not a docstring: drf-spectacular would publish a docstring as the
    # description of every output schema.)

    _shared_fields: ClassVar[Mapping[str, Field[Any, Any, Any, Any]] | None] = None
    _shared_readers: ClassVar[tuple[_Reader, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            problem = _unshareable(field)
            if problem:
                raise TypeError(f"{cls.__name__}.{name}: {problem}; use serializers.Serializer")
        cls._shared_fields = None

    @classmethod
    def _bind_shared(cls) -> Mapping[str, Field[Any, Any, Any, Any]]:
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            # Bound to a prototype: what the fields learn from their parent (their
            # name and source) is the same for every instance of the class.
            prototype = cls()
            bound = BindingDict(prototype)  # what Serializer.fields builds
            for name, field in prototype.get_fields().items():
                bound[name] = field
            for name, field in bound.items():
                problem = _unshareable(field)
                if problem:  # get_fields() overridden to add something unshareable
                    raise TypeError(f"{cls.__name__}.{name}: {problem}")
            shared = MappingProxyType(dict(bound))
            cls._shared_readers = tuple(_reader(f) for f in shared.values() if not f.write_only)
            cls._shared_fields = shared
        return shared

    @property
    def fields(self) -> Mapping[str, Field[Any, Any, Any, Any]]:  # type: ignore[override]
        return self._bind_shared()

    @classmethod
    def sources(cls) -> list[str]:
        """The attributes the output reads: what a list needs to load (`QuerySet.only`)."""
        return [str(field.source) for field in cls._bind_shared().values() if field.source != "*"]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # DRF's Serializer.to_representation over the shared fields, with each field's
        # reading and rendering worked out once per class (`_reader`): for a plain
        # attribute, a getattr, and for the common types the rendering DRF's own
        # to_representation would do, without its per-call checks. Anything else
        # (a mapping, a callable or missing attribute, other values) goes DRF's way.
        self._bind_shared()
        ret: dict[str, Any] = {}
        plain = not isinstance(instance, Mapping)
        zone: tzinfo | None = None
        for reader in self._shared_readers:
            field = reader.field
            if plain and reader.attribute is not None:
                try:
                    value = getattr(instance, reader.attribute)
                except Exception:  # noqa: BLE001  (missing, or DoesNotExist: DRF's way below)
                    value = _MISSING
                if value is None:
                    ret[reader.name] = None
                    continue
                if value is _MISSING or callable(value):
                    pass  # DRF's way, below
                elif type(value) is not reader.fast_type:
                    ret[reader.name] = field.to_representation(value)
                    continue
                elif reader.kind == _AS_IS:
                    ret[reader.name] = value
                    continue
                elif reader.kind == _STR:
                    ret[reader.name] = str(value)
                    continue
                elif value.tzinfo is not None:  # an aware datetime
                    if zone is None:
                        zone = timezone.get_current_timezone()
                    try:
                        text = value.astimezone(zone).isoformat()
                    except OverflowError:  # DRF's "overflow" error
                        ret[reader.name] = field.to_representation(value)
                        continue
                    ret[reader.name] = text[:-6] + "Z" if text.endswith("+00:00") else text
                    continue
                else:  # a naive datetime: DRF makes it aware
                    ret[reader.name] = field.to_representation(value)
                    continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = (
                attribute.pk if isinstance(attribute, relations.PKOnlyObject) else attribute
            )
            if check_for_none is None:
                ret[reader.name] = None
            else:
                ret[reader.name] = field.to_representation(attribute)
        return ret


_MISSING = object()
_AS_IS, _STR, _DATETIME, _DRF = "as-is", "str", "datetime", "drf"


@dataclass(frozen=True)
class _Reader:
    """How OutputSerializer reads and renders one field (see to_representation)."""

    field: Field[Any, Any, Any, Any]
    name: str
    attribute: str | None  # the one attribute the field's source names, if that plain
    kind: str  # _AS_IS / _STR / _DATETIME: rendered here; _DRF: field.to_representation
    fast_type: type | None  # the one value type rendered here (another goes DRF's way)


def _reader(field: Field[Any, Any, Any, Any]) -> _Reader:
    source_attrs = list(getattr(field, "source_attrs", []))
    attribute = source_attrs[0] if len(source_attrs) == 1 and field.source != "*" else None
    render = type(field).to_representation
    kind: str = _DRF
    fast_type: type | None = None
    # Each case renders its type exactly as that DRF method does (tests compare them).
    if render is serializers.CharField.to_representation:  # also Email, Slug, URL, Regex
        kind, fast_type = _STR, str
    elif render is serializers.IntegerField.to_representation:
        kind, fast_type = _AS_IS, int  # int(value) of an int
    elif render is serializers.BooleanField.to_representation:
        kind, fast_type = _AS_IS, bool  # True / False are its TRUE / FALSE values
    elif render is serializers.UUIDField.to_representation:
        if getattr(field, "uuid_format", "hex_verbose") == "hex_verbose":
            kind, fast_type = _STR, uuid.UUID
    elif render is serializers.DateTimeField.to_representation and _iso_in_current_zone(field):
        kind, fast_type = _DATETIME, datetime
    return _Reader(
        field=field, name=str(field.field_name), attribute=attribute, kind=kind, fast_type=fast_type
    )


def _iso_in_current_zone(field: Field[Any, Any, Any, Any]) -> bool:
    """Whether DRF renders this DateTimeField's aware values as ISO 8601 in the current zone."""
    from django.conf import settings
    from rest_framework.settings import api_settings

    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return (
        isinstance(output_format, str)
        and output_format.lower() == ISO_8601
        and not hasattr(field, "timezone")
        and bool(settings.USE_TZ)
    )


def _unshareable(field: Field[Any, Any, Any, Any]) -> str | None:
    if isinstance(field, serializers.BaseSerializer):
        return "a nested serializer cannot be shared"
    if isinstance(field, serializers.SerializerMethodField):
        return "a SerializerMethodField calls its parent"
    if isinstance(field, relations.RelatedField | relations.ManyRelatedField):
        return "a related field may need the request"
    if isinstance(field, serializers.HiddenField):
        return "a hidden field is input"
    if not field.read_only:
        return "only read-only fields belong in an output serializer"
    return None
