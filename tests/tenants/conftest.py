"""Fixtures of the tenants tests."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import User


@pytest.fixture
def admin_client(operator: User) -> Client:
    """A test client signed into the public admin as a platform operator."""
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    return client


def admin_change_data(page) -> dict[str, str]:
    """What an admin change form posts back, as the browser got it (inlines included)."""
    data: dict[str, str] = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else str(value)
    return data
