"""Form fields for the JSON the admin shows, as people fill them in: a list as one item a
line, a mapping as one `key = value` a line. Bad input is the field's error, listing the
lines at fault; what is saved is plain JSON (a list of strings, an object).

They only parse and check the shape: the rules of the data stay with the services, which
remain the only writers (a ModelAdmin passes the cleaned value to its service)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_NO_SPACE_RE = re.compile(r"\S+")


def _lines(value: str) -> list[tuple[int, str]]:
    """The non-blank lines of `value`, stripped, with their 1-based line numbers."""
    return [(n, line.strip()) for n, line in enumerate(value.splitlines(), 1) if line.strip()]


def no_whitespace(item: str) -> None:
    """An item that is one word: an OAuth scope, a domain."""
    if not _NO_SPACE_RE.fullmatch(item):
        raise ValidationError("Put one item on each line, without spaces.")


def _list_text(value: Any) -> str | None:
    if isinstance(value, str):
        # The form shown again with its errors: what was typed, as typed. A list that
        # came as JSON text (a JSONField's initial value) still shows one a line.
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        value = parsed if isinstance(parsed, list) else value
    if isinstance(value, list | tuple):
        return "\n".join(str(item) for item in value)
    return None if value is None else str(value)


class LinesWidget(forms.Textarea):
    """A textarea showing a list one item a line."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 4, "cols": 60, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        return _list_text(value)


class JSONListField(forms.Field):
    """A JSON list of strings, typed one a line. Blank lines are ignored and repeats kept
    once (in their first place); each item can be checked by `item_validators`."""

    widget = LinesWidget
    default_error_messages = {
        "too_many": "At most %(limit)d lines (%(count)d given).",
        "too_long": "Line %(line)d: at most %(limit)d characters.",
        "invalid_item": "Line %(line)d (%(item)s): %(problem)s",
    }

    def __init__(
        self,
        *,
        max_items: int = 100,
        item_max_length: int = 1000,
        item_validators: Sequence[Callable[[str], None]] = (),
        lowercase: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("required", False)
        help_text = kwargs.pop("help_text", "")
        kwargs["help_text"] = f"{help_text} One a line.".strip()
        super().__init__(**kwargs)
        self.max_items = max_items
        self.item_max_length = item_max_length
        self.item_validators = list(item_validators)
        self.lowercase = lowercase

    def prepare_value(self, value: Any) -> Any:
        # The text a browser shows and posts back (BoundField.value() is this).
        return _list_text(value)

    def to_python(self, value: Any) -> list[str]:
        if value in self.empty_values:
            return []
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        if not isinstance(value, str):
            raise ValidationError("Enter one item a line.")
        errors: list[ValidationError] = []
        items: list[str] = []
        numbered = _lines(value)
        if len(numbered) > self.max_items:
            raise ValidationError(
                self.error_messages["too_many"],
                params={"limit": self.max_items, "count": len(numbered)},
            )
        for line, item in numbered:
            item = item.lower() if self.lowercase else item
            if len(item) > self.item_max_length:
                errors.append(
                    ValidationError(
                        self.error_messages["too_long"],
                        params={"line": line, "limit": self.item_max_length},
                    )
                )
                continue
            problem = self._item_problem(item)
            if problem:
                errors.append(
                    ValidationError(
                        self.error_messages["invalid_item"],
                        params={"line": line, "item": item[:80], "problem": problem},
                    )
                )
            elif item not in items:
                items.append(item)
        if errors:
            raise ValidationError(errors)
        return items

    def _item_problem(self, item: str) -> str:
        for validator in self.item_validators:
            try:
                validator(item)
            except ValidationError as exc:
                return " ".join(exc.messages)
        return ""

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != self.to_python(initial)
        except ValidationError:
            return True


# ------------------------------------------------------------------ key = value


def _shown(value: Any) -> str:
    """A value as typed back: a string as itself unless it would read back as something
    else (a number, true, a quoted string); anything else as JSON."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
        return json.dumps(value)
    return json.dumps(value)


def _read(text: str) -> Any:
    """A typed value: JSON when it is JSON (numbers, true/false/null, "text", [lists],
    {objects}), otherwise the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _mapping_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return "\n".join(f"{key} = {_shown(item)}" for key, item in value.items())
    return None if value is None else str(value)


class KeyValueWidget(forms.Textarea):
    """A textarea showing a mapping one `key = value` a line."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 4, "cols": 60, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        return _mapping_text(value)


class KeyValueField(forms.Field):
    """A JSON object typed one `key = value` a line. A value is read as JSON when it is
    (600, true, ["a", "b"], "quoted text"), else as the text it is. `reserved_keys` are
    the ones the form has fields of their own for."""

    widget = KeyValueWidget

    def __init__(
        self, *, reserved_keys: Iterable[str] = (), max_items: int = 100, **kwargs: Any
    ) -> None:
        kwargs.setdefault("required", False)
        help_text = kwargs.pop("help_text", "")
        kwargs["help_text"] = (
            f"{help_text} One 'key = value' a line; a value is read as JSON when it is "
            '(600, true, ["a", "b"], "quoted text"), else as text.'
        ).strip()
        super().__init__(**kwargs)
        self.reserved_keys = frozenset(reserved_keys)
        self.max_items = max_items

    def prepare_value(self, value: Any) -> Any:
        # The text a browser shows and posts back (BoundField.value() is this).
        return _mapping_text(value)

    def to_python(self, value: Any) -> dict[str, Any]:
        if value in self.empty_values:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        if not isinstance(value, str):
            raise ValidationError("Enter one 'key = value' a line.")
        numbered = _lines(value)
        if len(numbered) > self.max_items:
            raise ValidationError(f"At most {self.max_items} lines.")
        errors: list[str] = []
        result: dict[str, Any] = {}
        for line, text in numbered:
            key, equals, raw = (part.strip() for part in text.partition("="))
            if not equals:
                errors.append(f"Line {line}: write it as 'key = value'.")
            elif not _KEY_RE.fullmatch(key):
                errors.append(
                    f"Line {line}: a key is a letter or _ then up to 63 letters, digits, _ . or -."
                )
            elif key in self.reserved_keys:
                errors.append(f"Line {line}: set '{key}' in its own field above.")
            elif key in result:
                errors.append(f"Line {line}: '{key}' is given twice.")
            else:
                result[key] = _read(raw)
        if errors:
            raise ValidationError(errors)
        return result

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != self.to_python(initial)
        except ValidationError:
            return True
