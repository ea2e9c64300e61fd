"""The RBAC benchmark's measurement, in one Django process (see bench/rbac.py)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.accounts.apis.users import UserMeApi  # noqa: E402
from apps.accounts.services.sessions import ClientInfo, session_start  # noqa: E402
from apps.core.gateway import identity as gateway  # noqa: E402
from apps.rbac.models import Role, RoleAssignment  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from bench.django_tasks import _Recorder  # noqa: E402
from platform_site import urls as tenant_urls  # noqa: E402
from platform_site.urls_common import api_v1  # noqa: E402


class CheckedMeApi(UserMeApi):
    required_permissions = {"GET": "users.view", "PATCH": "users.manage"}


# Mounted in the API's group just before the users' patterns, so that resolving it walks
# past nearly the same patterns as /api/v1/users/me: routed first of all, it resolved
# faster than /users/me, which hid the check's cost.
_api, *_rest = tenant_urls.urlpatterns
if str(_api.pattern) != "api/v1/":
    raise SystemExit("platform_site/urls.py no longer starts with api_v1(): mount the view there")
urlpatterns = [
    api_v1([path("bench/me-checked", CheckedMeApi.as_view())], *tenant_urls.api_v1_groups),
    *_rest,
]

VARIANTS: dict[str, tuple[list[str], str]] = {
    "identity": (["apps.accounts.authentication.bearer_identity"], "/api/v1/users/me"),
    "rbac": (["apps.rbac.gateway.bearer_identity_with_grants"], "/api/v1/users/me"),
    "checked": (["apps.rbac.gateway.bearer_identity_with_grants"], "/api/v1/bench/me-checked"),
}


def setup() -> tuple[str, str]:
    provisioned = tenant_create(
        name="Bench RBAC", slug="bench-rbac", admin_email="owner@bench.test"
    )
    with tenant_context(provisioned.tenant):
        user = provisioned.admin
        role = Role.objects.create(name="Viewers", permissions=["users.view"])
        RoleAssignment.objects.create(user=user, role=role)
        pair = session_start(
            user=user, client=ClientInfo(ip_address="127.0.0.1", user_agent="bench")
        )
    return provisioned.domain.domain, pair.access_token


def measure(client: Client, host: str, token: str, url: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        response = client.get(url, HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    return (time.perf_counter() - started) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    host, token = setup()
    client = Client()
    rounds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    counts: dict[str, Any] = {}
    with override_settings(ROOT_URLCONF=__name__):
        for name, (identifiers, url) in VARIANTS.items():  # warm every path once
            with override_settings(GATEWAY_IDENTIFIERS=identifiers):
                gateway.identifiers.cache_clear()
                measure(client, host, token, url, 50)
                recorder = _Recorder()
                recorder.install()
                try:
                    with (
                        recorder.window() as (_, commands),
                        CaptureQueriesContext(connection) as queries,
                    ):
                        measure(client, host, token, url, 10)
                finally:
                    recorder.uninstall()
                counts[name] = {
                    "redis": len(commands) / 10,
                    "sql": len(queries.captured_queries) / 10,
                }
        for _ in range(args.rounds):
            for name, (identifiers, url) in VARIANTS.items():
                with override_settings(GATEWAY_IDENTIFIERS=identifiers):
                    gateway.identifiers.cache_clear()
                    rounds[name].append(measure(client, host, token, url, args.requests))
    result = {
        "rounds_us": {k: [round(v, 1) for v in vs] for k, vs in rounds.items()},
        "median_us": {k: round(statistics.median(vs), 1) for k, vs in rounds.items()},
        "redis_commands": {k: v["redis"] for k, v in counts.items()},
        "sql_queries": {k: v["sql"] for k, v in counts.items()},
        "debug": settings.DEBUG,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
