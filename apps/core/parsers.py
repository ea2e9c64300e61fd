"""The API's request body parser: JSON, refused at the door when no layer behind could take it.

DRF's JSONParser hands views whatever `json.loads` builds. Three things it lets
through would fail later, as a 500:

- nesting deep enough to exhaust the interpreter's stack (`[[[[...`, 1,000 deep):
  a RecursionError while parsing, or later while validating, saving or rendering;
- the character U+0000 in any string or key: PostgreSQL refuses it in text and jsonb
  (DRF's CharField refuses it too, but JSONField, DictField and the like do not);
- lone UTF-16 surrogates (`"\\ud800"`): valid JSON escapes, but no UTF-8 encodes them,
  so neither PostgreSQL nor the response renderer (echoing the input) can.

Here a body nested deeper than `API_JSON_MAX_DEPTH` is a 400 (BAD_REQUEST, as any body
that cannot be parsed), and a string or key with U+0000 or a lone surrogate is a 422
(VALIDATION_ERROR) whose details name where it is, as the serializers name fields.
The size of the body is bounded before it is read (DATA_UPLOAD_MAX_MEMORY_SIZE: 413).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]

# Lone surrogates only: `json.loads` joins an escaped pair (an emoji) into one code point.
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")
# In the body's text, what can become U+0000 or a lone surrogate once parsed: the escapes
# (JSON refuses a raw U+0000 in a string), or a raw surrogate (a charset such as UTF-7
# can decode to one). Bodies without either, nearly all, are not walked for it.
_MAY_BE_UNENCODABLE = re.compile("\\\\u(?:0000|[dD][89a-fA-F])|[\ud800-\udfff]")
# More errors than this in one body are not worth listing.
_MAX_REPORTED = 10


def _unencodable_message(text: str) -> str:
    if "\x00" in text:
        return "Null characters are not allowed."
    return "Unpaired surrogate characters are not allowed."


def _key_message(key: str) -> str:
    return "A key here contains " + (
        "a null character." if "\x00" in key else "an unpaired surrogate character."
    )


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def max_depth() -> int:
    return int(getattr(settings, "API_JSON_MAX_DEPTH", 64))


def nested_deeper_than(data: Any, limit: int) -> bool:
    """Whether `data` nests more than `limit` objects and arrays (visits containers only,
    a level at a time: about what json.loads spent building them)."""
    level = [data] if type(data) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner: list[Any] = []
        for container in level:
            for value in container.values() if type(container) is dict else container:
                if type(value) is list or type(value) is dict:
                    inner.append(value)
        level = inner
    return False


def unencodable_places(data: Any) -> dict[str, Any]:
    """Where strings and keys hold U+0000 or a lone surrogate, as nested
    `{field: {key: [message]}}` details (list indexes as strings, like DRF's)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack and len(problems) < _MAX_REPORTED:
        value, path = stack.pop()
        if isinstance(value, str):
            if _UNENCODABLE.search(value):
                problems.append((path, _unencodable_message(value)))
        elif isinstance(value, dict):
            for key, item in value.items():
                if _UNENCODABLE.search(key):
                    # Reported on the object: the key itself cannot be echoed back as it is.
                    problems.append((path, _key_message(key)))
                else:
                    stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index))) for index, item in enumerate(value))
    return _nested(problems)


def _nested(problems: list[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for path, message in problems:
        if not path:
            path = ("non_field_errors",)
        node = details
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # the container itself is reported already
                break
            node = child
        else:
            messages = node.setdefault(path[-1], [])
            if isinstance(messages, list) and message not in messages:
                messages.append(message)
    return details


class PlatformJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        # DRF's check of the charset: text encodings only (a bz2_codec body would inflate
        # past the size limit it was checked against).
        encoding = get_encoding(dict(parser_context or {}))
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"The request body is not valid {encoding} text.") from None
        limit = max_depth()
        too_deep = ParseError(f"The JSON body is nested deeper than {limit} levels.")
        try:
            data = json.loads(text, parse_constant=_strict_constant)
        except RecursionError:
            raise too_deep from None
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        except ValueError:  # NaN / Infinity, or an integer of more than 4,300 digits
            raise ParseError("Malformed JSON: a number is out of range.") from None
        # Counting brackets (strings' included) bounds the depth from above, at C speed.
        if text.count("[") + text.count("{") > limit and nested_deeper_than(data, limit):
            raise too_deep
        if _MAY_BE_UNENCODABLE.search(text):
            problems = unencodable_places(data)
            if problems:
                raise ValidationError(problems)
        return data
