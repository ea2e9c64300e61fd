"""The response envelope every API answer is wrapped in (DESIGN.md, "API conventions").

success: {"success": true,  "data": ...,                        "meta": {...}}
error:   {"success": false, "error": {code, message, details}, "meta": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from apps.core.context import current_request_id


class Meta(TypedDict):
    request_id: str | None
    timestamp: str
    version: str


class ErrorBody(TypedDict):
    code: str
    message: str
    details: dict[str, Any]


def _timestamp() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_meta(request: HttpRequest | None = None) -> Meta:
    request_id = getattr(request, "request_id", None) or current_request_id()
    return {"request_id": request_id, "timestamp": _timestamp(), "version": settings.API_VERSION}


def success_body(data: Any, request: HttpRequest | None = None) -> dict[str, Any]:
    return {"success": True, "data": data, "meta": build_meta(request)}


def error_body(
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    error: ErrorBody = {"code": code, "message": message, "details": dict(details or {})}
    return {"success": False, "error": error, "meta": build_meta(request)}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> JsonResponse:
    """An error envelope for code paths outside DRF (middleware, Django's error views)."""
    return JsonResponse(error_body(code, message, details, request), status=status)
