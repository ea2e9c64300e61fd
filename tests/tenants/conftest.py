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
