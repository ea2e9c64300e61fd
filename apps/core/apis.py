from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class InfoApi(APIView):
    """Which tenant this host serves and which API version answers: no sign-in needed."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="info",
        responses={
            200: inline_serializer(
                "Info",
                {
                    "tenant": inline_serializer(
                        "InfoTenant",
                        {"name": serializers.CharField(), "slug": serializers.CharField()},
                        allow_null=True,
                    ),
                    "api_version": serializers.CharField(),
                    "server_time": serializers.DateTimeField(),
                },
            )
        },
        tags=["meta"],
    )
    def get(self, request: Request) -> Response:
        tenant: Any = getattr(request, "tenant", None)
        body = {
            "tenant": None
            if tenant is None or tenant.is_public
            else {"name": tenant.name, "slug": tenant.slug},
            "api_version": settings.API_VERSION,
            "server_time": timezone.now().isoformat().replace("+00:00", "Z"),
        }
        return Response(body)
