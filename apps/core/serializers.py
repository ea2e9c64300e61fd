from __future__ import annotations

from typing import Any

from rest_framework import serializers


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
