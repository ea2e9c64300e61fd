"""The Django admin's password sign-in, on tenant hosts and the public host, under the same
brute-force limits as the API: the same counters, the same lock, closed when Redis is down."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django_tenants.utils import schema_context, tenant_context
from rest_framework.test import APIClient

from apps.accounts.models import User
from devtools.services import free_port
from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD, make_user
from tests.conftest import ADMIN_PASSWORD

ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api/v1/auth/login"
PUBLIC_HOST = "localhost"


@pytest.fixture
def small_limits(settings) -> None:
    settings.AUTH_RATE_LIMITS = {
        **settings.AUTH_RATE_LIMITS,
        "login_ip": "100/m",
        "login_account": "3/m",
    }


def _client(n: int = 0) -> Client:
    return Client(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.{n % 250}.1")


def _admin_login(client: Client, host: str, email: str, password: str = "wrong-password-1"):
    return client.post(
        ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, HTTP_HOST=host
    )


def _signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def _form_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


@pytest.fixture
def staff(tenant_a) -> User:
    with tenant_context(tenant_a.tenant):
        return make_user(email="staff@alpha.test", username="staffer", is_staff=True)


@pytest.mark.django_db
def test_forty_wrong_passwords_then_the_right_one_stays_refused_on_a_tenant_admin(
    tenant_a, staff
) -> None:
    # A password-guessing run, with the shipped limits (30/min per address, 5 per 5 min per account).
    client = _client()
    for _ in range(40):
        response = _admin_login(client, tenant_a.host, "staff@alpha.test")
        assert not _signed_in(response)
    right = _admin_login(client, tenant_a.host, "staff@alpha.test", PASSWORD)
    assert right.status_code == 429
    assert not _signed_in(right)
    assert int(right["Retry-After"]) >= 1
    assert any("try again later" in error for error in _form_errors(right))


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_public_admin_locks_an_operator_after_the_account_limit(operator: User) -> None:
    for n in range(3):
        response = _admin_login(_client(n), PUBLIC_HOST, operator.email)
        assert response.status_code == 200 and not _signed_in(response)
    locked = _admin_login(_client(9), PUBLIC_HOST, operator.email, ADMIN_PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= 60
    assert not _signed_in(locked)
    # Another operator is not affected.
    with schema_context("public"):
        other = User.objects.create_user(
            f"other-{uuid.uuid4().hex[:8]}@localhost", ADMIN_PASSWORD, is_staff=True
        )
    assert _signed_in(_admin_login(_client(10), PUBLIC_HOST, other.email, ADMIN_PASSWORD))


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_admin_and_api_share_the_account_counter(tenant_a, staff) -> None:
    api = Api(APIClient(REMOTE_ADDR="10.3.0.1"), tenant_a.host)
    for _ in range(2):
        assert (
            api.call("post", API_LOGIN, {"email": "staff@alpha.test", "password": "x"}).status_code
            == 401
        )
    # The third failure, through the admin, reaches the limit (3): the account is locked for both.
    assert not _signed_in(_admin_login(_client(1), tenant_a.host, "STAFF@alpha.test"))
    refused = api.call("post", API_LOGIN, {"email": "staff@alpha.test", "password": PASSWORD})
    assert refused.status_code == 429
    assert _admin_login(_client(2), tenant_a.host, "staff@alpha.test", PASSWORD).status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_api_failures_lock_the_admin_too(tenant_a, staff) -> None:
    api = Api(APIClient(REMOTE_ADDR="10.3.1.1"), tenant_a.host)
    for _ in range(3):
        assert (
            api.call("post", API_LOGIN, {"email": "staff@alpha.test", "password": "x"}).status_code
            == 401
        )
    locked = _admin_login(_client(), tenant_a.host, "staff@alpha.test", PASSWORD)
    assert locked.status_code == 429 and not _signed_in(locked)


@pytest.mark.django_db
def test_admin_attempts_count_against_the_address_with_the_api(tenant_a, staff, settings) -> None:
    settings.AUTH_RATE_LIMITS = {**settings.AUTH_RATE_LIMITS, "login_ip": "3/m"}
    client = _client()
    for n in range(3):
        assert not _signed_in(_admin_login(client, tenant_a.host, f"probe{n}@alpha.test"))
    api = Api(APIClient(REMOTE_ADDR=client.defaults["REMOTE_ADDR"]), tenant_a.host)
    blocked = api.call("post", API_LOGIN, {"email": "staff@alpha.test", "password": PASSWORD})
    assert blocked.status_code == 429
    assert _admin_login(client, tenant_a.host, "staff@alpha.test", PASSWORD).status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_unknown_accounts_and_wrong_passwords_look_the_same(tenant_a, staff) -> None:
    wrong = _admin_login(_client(1), tenant_a.host, "staff@alpha.test")
    unknown = _admin_login(_client(2), tenant_a.host, "nobody@alpha.test")
    assert wrong.status_code == unknown.status_code == 200
    assert _form_errors(wrong) == _form_errors(unknown)
    # Both are counted: an unknown address is locked like a real one.
    for n in range(2):
        _admin_login(_client(3 + n), tenant_a.host, "nobody@alpha.test")
        _admin_login(_client(5 + n), tenant_a.host, "staff@alpha.test")
    assert _admin_login(_client(7), tenant_a.host, "nobody@alpha.test").status_code == 429
    assert _admin_login(_client(8), tenant_a.host, "staff@alpha.test").status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("small_limits")
def test_successful_admin_sign_ins_do_not_lock_the_account(tenant_a, staff) -> None:
    for n in range(4):
        assert _signed_in(_admin_login(_client(n), tenant_a.host, "staff@alpha.test", PASSWORD))


@pytest.mark.django_db
def test_admin_sign_in_with_redis_down_is_refused_with_a_clear_message(
    tenant_a, staff, settings
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        name: {**config, "LOCATION": dead} for name, config in settings.CACHES.items()
    }
    response = _admin_login(_client(), tenant_a.host, "staff@alpha.test", PASSWORD)
    assert response.status_code == 503
    assert not _signed_in(response)
    assert int(response["Retry-After"]) >= 1
    assert any("unavailable" in error for error in _form_errors(response))
    assert "Traceback" not in response.content.decode()
