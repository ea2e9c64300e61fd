from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.keys import keyring
from tests.accounts.conftest import Api
from tests.accounts.factories import make_user


@pytest.fixture(autouse=True)
def _fresh_keyring() -> Iterator[None]:
    # Keys a test creates are rolled back with its transaction; this process must not
    # keep signing with them afterwards.
    keyring.keyring_reset()
    yield
    keyring.keyring_reset()


@pytest.fixture
def api_a(api: APIClient, tenant_a) -> Api:
    return Api(api, tenant_a.host)


@pytest.fixture
def member_a(tenant_a) -> User:
    with tenant_context(tenant_a.tenant):
        return make_user(email="member@alpha.test", username="member")
