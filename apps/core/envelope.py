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

# Status -> (code, message) for errors that carry no code of their own. It lives
# here, beside the envelope, so the renderer can use it without importing the
# exception handler (which imports DRF's views, which import the renderer).
GENERIC_500_MESSAGE = "An unexpected error occurred"

_CODE_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "The request could not be understood"),
    401: ("UNAUTHORIZED", "Authentication required"),
    403: ("FORBIDDEN", "Permission denied"),
    404: ("NOT_FOUND", "Resource not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    406: ("NOT_ACCEPTABLE", "The requested response format is not available"),
    409: ("CONFLICT", "Resource conflict"),
    413: ("PAYLOAD_TOO_LARGE", "The request body is too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    422: ("VALIDATION_ERROR", "Validation failed"),
    429: ("RATE_LIMITED", "Rate limit exceeded"),
    500: ("INTERNAL_ERROR", GENERIC_500_MESSAGE),
    503: ("SERVICE_UNAVAILABLE", "A service the platform depends on is unavailable"),
}


def code_for_status(status: int) -> tuple[str, str]:
    if status in _CODE_BY_STATUS:
        return _CODE_BY_STATUS[status]
    return ("INTERNAL_ERROR", GENERIC_500_MESSAGE) if status >= 500 else ("BAD_REQUEST", "Error")


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
