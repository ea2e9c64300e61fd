"""Reference views served by the platform's gunicorn outside the platform's middleware stack.

`/bench/bare`: Django alone (a `JsonResponse`); `/bench/drf`: DRF alone, a
plain `APIView` with DRF's own `JSONRenderer` (no tenancy, no envelope, no
middleware, no authentication or permission classes). Together with
`/api/v1/info` they show where the time per request goes. `/bench/users`: the
users-list baseline of `identity.py`, a plain DRF `ListAPIView`
(`bench.reference_identity`, whose docstring says exactly what it includes).
"""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.reference_identity import urlpatterns as identity_urlpatterns
from bench.urls_bare import urlpatterns as bare_urlpatterns


class DrfInfo(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "tenant": {"name": "Bench", "slug": "bench"},
                "api_version": "1.0",
                "server_time": timezone.now().isoformat().replace("+00:00", "Z"),
            }
        )


urlpatterns = [
    *bare_urlpatterns,
    path("bench/drf", DrfInfo.as_view(), name="bench-drf"),
    *identity_urlpatterns,
]
