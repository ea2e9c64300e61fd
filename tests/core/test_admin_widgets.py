"""The admin's list and key/value fields: typed a line at a time, saved as JSON."""

from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from apps.core.admin_widgets import JSONListField, KeyValueField, no_whitespace

# No query is made; the suite's autouse fixtures reset the connection's schema.
pytestmark = pytest.mark.django_db


class ListForm(forms.Form):
    scopes = JSONListField(max_items=3, item_max_length=10, item_validators=[no_whitespace])
    uris = JSONListField(item_validators=[URLValidator(schemes=["https"])], lowercase=True)


def test_lines_become_a_list_without_blanks_or_repeats() -> None:
    form = ListForm({"scopes": " openid\n\nemail \r\nopenid\n", "uris": "HTTPS://A.test/cb"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"scopes": ["openid", "email"], "uris": ["https://a.test/cb"]}


def test_a_list_is_shown_one_item_a_line() -> None:
    form = ListForm(initial={"scopes": ["openid", "email"], "uris": []})

    assert form["scopes"].value() == "openid\nemail"
    assert ">\nopenid\nemail</textarea>" in str(form["scopes"])


@pytest.mark.parametrize(
    ("scopes", "problem"),
    [
        ("a\nb\nc\nd", "At most 3 lines (4 given)."),
        ("openid\nfar-too-long-scope", "Line 2: at most 10 characters."),
        ("openid\na b", "Line 2 (a b): Put one item on each line"),
    ],
)
def test_bad_lines_are_the_fields_errors(scopes: str, problem: str) -> None:
    form = ListForm({"scopes": scopes, "uris": ""})

    assert not form.is_valid()
    assert problem in " ".join(map(str, form.errors["scopes"]))


def test_each_bad_item_is_named_by_its_line() -> None:
    form = ListForm({"scopes": "", "uris": "https://ok.test\nhttp://plain.test\njunk"})

    assert not form.is_valid()
    errors = [str(e) for e in form.errors["uris"]]
    assert len(errors) == 2
    assert errors[0].startswith("Line 2") and errors[1].startswith("Line 3")


def test_key_values_are_read_as_json_when_they_are() -> None:
    field = KeyValueField(reserved_keys={"rate_limit"})

    value = field.clean('a = 1\nb = true\nc = ["x", "y"]\nd = plain text\ne = "7"\nf = {"k": null}')

    assert value == {
        "a": 1,
        "b": True,
        "c": ["x", "y"],
        "d": "plain text",
        "e": "7",
        "f": {"k": None},
    }


def test_key_values_round_trip_through_the_text_shown() -> None:
    field = KeyValueField()
    stored = {"n": 5, "s": "5", "t": "hello", "q": '"quoted"', "l": [1], "b": False}

    assert field.clean(field.prepare_value(stored)) == stored


def test_a_reserved_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="its own field"):
        KeyValueField(reserved_keys={"rate_limit"}).clean("rate_limit = 1/s")
