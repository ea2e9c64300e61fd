from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from rest_framework import relations, serializers
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
    _shared_readable: ClassVar[tuple[Field[Any, Any, Any, Any], ...]] = ()

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
            cls._shared_readable = tuple(f for f in shared.values() if not f.write_only)
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
        # DRF's Serializer.to_representation over the shared fields.
        self._bind_shared()
        ret: dict[str, Any] = {}
        for field in self._shared_readable:
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = (
                attribute.pk if isinstance(attribute, relations.PKOnlyObject) else attribute
            )
            if check_for_none is None:
                ret[field.field_name] = None  # type: ignore[index]
            else:
                ret[field.field_name] = field.to_representation(attribute)  # type: ignore[index]
        return ret


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
