"""The bare baseline: one plain Django view returning a `JsonResponse`, nothing else imported.

Served both inside the platform's gunicorn (by `bench.wsgi`, with no
middleware at all) and alone by the bare server (`settings_bare`), whose
worker memory the platform's is compared with. The body has the same fields
as `GET /api/v1/info` (without the envelope around it).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone


def bare_info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "tenant": {"name": "Bench", "slug": "bench"},
            "api_version": "1.0",
            "server_time": timezone.now().isoformat().replace("+00:00", "Z"),
        }
    )


urlpatterns = [path("bench/bare", bare_info, name="bench-bare")]
