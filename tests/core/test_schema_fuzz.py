"""Every operation of both hosts' schemas, fuzzed from the schema itself (schemathesis):
whatever it is sent, the API answers no 5xx, only statuses the operation documents, and
bodies (error codes included) and content types that match what it documents.

Each operation is one pytest test: the schema's examples, schemathesis' boundary cases
(empty, huge and odd strings, NUL, numbers at and past their limits, missing and
mistyped fields) and a bounded number of generated requests, positive and negative,
sent in-process to Django's WSGI application with a real token of the host: a platform
operator's on the public host, the tenant owner's on a tenant host. Seeded and
derandomized: the same cases every run. Each case runs in a savepoint that is rolled
back, with the cached auth, tenant and rate-limit state cleared, so every case meets the
same tenant; outbound connections (an identity provider's discovery) fail as without a
network.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django_tenants.utils import tenant_context
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from apps.accounts.models import User
from apps.accounts.services.sessions import ClientInfo, session_start
from apps.core.tenancy import tenant_connection
from tests.conftest import _forget_cached_state

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

# Cases per operation from the generation phase; the boundary-case phase adds its own.
MAX_EXAMPLES = 12

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261207,
        "generation": {
            "mode": "all",
            "deterministic": True,
            "max-examples": MAX_EXAMPLES,
            "no-shrink": True,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        },
    }
)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def _schema_of(urlconf: str) -> dict[str, Any]:
    # What /api/schema/ serves on a host of this URLconf (test_the_fuzzed_schemas_are_served).
    return SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)


PUBLIC_URLCONF = "platform_site.urls_public"
TENANT_URLCONF = "platform_site.urls"
public_api = schemathesis.openapi.from_dict(_schema_of(PUBLIC_URLCONF), config=CONFIG)
tenant_api = schemathesis.openapi.from_dict(_schema_of(TENANT_URLCONF), config=CONFIG)


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    # Django closes the connection at the end of every request when it is inside a
    # transaction (the test's): its test client switches that off too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names other than this machine's do not resolve, as on a machine without a network:
    a fuzzed issuer URL must not make the platform look anything up outside."""
    resolve = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("localhost", "::1") or str(host).startswith("127."):
            return resolve(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


def _token(user: User) -> str:
    pair = session_start(user=user, client=ClientInfo(ip_address=None, user_agent="fuzz"))
    return pair.access_token


def _send(case: schemathesis.Case, app: WSGIHandler, host: str, token: str) -> None:
    try:
        with transaction.atomic():
            case.call_and_validate(
                app=app, base_url=f"http://{host}", headers={"Authorization": f"Bearer {token}"}
            )
            transaction.set_rollback(True)
    finally:
        tenant_connection().set_schema_to_public()
        _forget_cached_state()


@pytest.fixture
def operator_token(operator: User) -> str:
    return _token(operator)


@pytest.fixture
def owner_token(tenant_a: Any) -> str:
    with tenant_context(tenant_a.tenant):
        return _token(tenant_a.admin())


@public_api.parametrize()
@FUZZ_SETTINGS
def test_public_api_answers_as_documented(
    case: schemathesis.Case, wsgi_app: WSGIHandler, operator_token: str, no_network: None
) -> None:
    _send(case, wsgi_app, "localhost", operator_token)


@tenant_api.parametrize()
@FUZZ_SETTINGS
def test_tenant_api_answers_as_documented(
    case: schemathesis.Case,
    wsgi_app: WSGIHandler,
    tenant_a: Any,
    owner_token: str,
    no_network: None,
) -> None:
    _send(case, wsgi_app, tenant_a.host, owner_token)


@pytest.mark.parametrize("urlconf", [PUBLIC_URLCONF, TENANT_URLCONF])
def test_the_fuzzed_schemas_are_served(api: Any, tenant_a: Any, urlconf: str) -> None:
    host = "localhost" if urlconf == PUBLIC_URLCONF else tenant_a.host
    response = api.get("/api/schema/", {"format": "json"}, HTTP_HOST=host)
    assert response.status_code == 200
    assert response.json() == _schema_of(urlconf)
