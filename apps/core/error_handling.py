"""One place that turns every error into the error envelope.

`exception_handler` is DRF's EXCEPTION_HANDLER: domain errors, DRF's own
exceptions, Django's Http404 / PermissionDenied / ValidationError and anything
unexpected. The `handler*` views cover the paths that never reach DRF (an
unknown URL, a CSRF failure, an exception in middleware) for API paths; the
admin keeps Django's HTML pages.

The database being unreachable (Django's OperationalError / InterfaceError: the
server refused or dropped the connection, or cannot serve it now) is a 503
SERVICE_UNAVAILABLE with Retry-After, as a Redis outage is, wherever it is raised:
in a DRF view here, anywhere else (middleware, tenant resolution, the admin)
through `handler500`. Any other database error (ProgrammingError, IntegrityError a
service did not turn into a domain error) stays a 500 INTERNAL_ERROR.

Django's own error reports (the DEBUG page) hide secrets too: apps/core/error_reports.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from apps.core.envelope import GENERIC_500_MESSAGE, code_for_status, error_body, error_response
from apps.core.errors import (
    PayloadTooLargeError,
    PlatformError,
    RateLimitedError,
    ServiceUnavailableError,
)

logger = structlog.get_logger("apps.core.errors")


@dataclass
class ErrorInfo:
    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _plain(detail: Any) -> Any:
    """DRF ErrorDetail trees -> plain JSON (lists of strings keyed by field)."""
    if isinstance(detail, Mapping):
        return {
            ("non_field_errors" if key == NON_FIELD_ERRORS else str(key)): _plain(value)
            for key, value in detail.items()
        }
    if isinstance(detail, list | tuple):
        return [_plain(item) for item in detail]
    return str(detail)


def _field_details(detail: Any) -> dict[str, Any]:
    plain = _plain(detail)
    if isinstance(plain, dict):
        return {
            key: value if isinstance(value, list | dict) else [value]
            for key, value in plain.items()
        }
    if isinstance(plain, list):
        return {"non_field_errors": plain}
    return {"non_field_errors": [plain]}


def _detail_message(exc: drf.APIException, fallback: str) -> str:
    detail = exc.detail
    if isinstance(detail, str) and str(detail) != str(exc.default_detail):
        return str(detail)
    return fallback


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot serve us now (refused, dropped or closed
    connection, server shutting down, too many connections...): DB-API's OperationalError
    and InterfaceError, as Django raises them for every driver."""
    return isinstance(exc, OperationalError | InterfaceError)


def classify(exc: BaseException) -> ErrorInfo | None:
    """Map a known exception to its envelope parts; None for an unexpected one."""
    if database_unavailable(exc):
        exc = ServiceUnavailableError()
    if isinstance(exc, PlatformError):
        info = ErrorInfo(exc.status_code, exc.code, exc.message, dict(exc.details))
        if isinstance(exc, RateLimitedError | ServiceUnavailableError):
            info.headers["Retry-After"] = str(exc.retry_after)
        return info
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        )
        return ErrorInfo(422, "VALIDATION_ERROR", "Validation failed", _field_details(details))
    if isinstance(exc, Http404):
        return ErrorInfo(404, "NOT_FOUND", "Resource not found")
    if isinstance(exc, PermissionDenied):
        return ErrorInfo(403, "FORBIDDEN", "Permission denied")
    if isinstance(exc, RequestDataTooBig):
        # A body over DATA_UPLOAD_MAX_MEMORY_SIZE that RequestSizeMiddleware could not see
        # coming (sent without a Content-Length, through ASGI): `request.body` refuses it.
        return classify(PayloadTooLargeError(max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    if isinstance(exc, SuspiciousOperation):
        # What Django answers 400 when it escapes a view (too many query parameters, say);
        # raised inside a DRF view it arrives here instead.
        logger.warning("suspicious_request", kind=type(exc).__name__)
        return ErrorInfo(400, "BAD_REQUEST", "The request could not be understood")
    if not isinstance(exc, drf.APIException):
        return None

    if isinstance(exc, drf.ValidationError):
        return ErrorInfo(422, "VALIDATION_ERROR", "Validation failed", _field_details(exc.detail))
    if isinstance(exc, drf.ParseError):
        return ErrorInfo(400, "BAD_REQUEST", _detail_message(exc, "Malformed request body"))
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        info = ErrorInfo(401, "UNAUTHORIZED", _detail_message(exc, "Authentication required"))
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            info.headers["WWW-Authenticate"] = auth_header
        return info
    if isinstance(exc, drf.PermissionDenied):
        return ErrorInfo(403, "FORBIDDEN", _detail_message(exc, "Permission denied"))
    if isinstance(exc, drf.NotFound):
        return ErrorInfo(404, "NOT_FOUND", _detail_message(exc, "Resource not found"))
    if isinstance(exc, drf.MethodNotAllowed):
        return ErrorInfo(405, "METHOD_NOT_ALLOWED", str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return ErrorInfo(406, "NOT_ACCEPTABLE", "The requested response format is not available")
    if isinstance(exc, drf.UnsupportedMediaType):
        return ErrorInfo(415, "UNSUPPORTED_MEDIA_TYPE", str(exc.detail))
    if isinstance(exc, drf.Throttled):
        wait = max(1, int(getattr(exc, "wait", None) or 1))
        return ErrorInfo(
            429,
            "RATE_LIMITED",
            "Rate limit exceeded",
            {"retry_after": wait},
            {"Retry-After": str(wait)},
        )
    code, message = code_for_status(exc.status_code)
    return ErrorInfo(exc.status_code, code, message)


def _log_server_error(exc: BaseException, info: ErrorInfo | None) -> None:
    """The one error line of a failed request (tracebacks carry no local variables and every
    line is redacted: apps/core/logging.py)."""
    if database_unavailable(exc):
        logger.error("database_unavailable", error=type(exc).__name__, exc_info=exc)
    elif info is None:
        logger.exception("unhandled_exception", exc_info=exc)
    else:
        logger.error("server_error", code=info.code, exc_info=exc)


def _mark_logged(response: HttpResponse) -> HttpResponse:
    # Django's own flag: django.request does not log this response again ("Service
    # Unavailable: /path"), the error above being its one line.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    request = context.get("request")
    info = classify(exc)
    if info is None or info.status >= 500:
        _log_server_error(exc, info)
    if info is None:
        info = ErrorInfo(500, "INTERNAL_ERROR", GENERIC_500_MESSAGE)
    set_rollback()
    response = Response(
        error_body(info.code, info.message, info.details, request),
        status=info.status,
        headers=info.headers or None,
    )
    response.enveloped = True  # type: ignore[attr-defined]
    if info.status >= 500:
        _mark_logged(response)
    return response


# ----------------------------------------------------------------- Django error views


def is_api_path(path: str) -> bool:
    return path.startswith(tuple(settings.API_PATH_PREFIXES))


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(
            400, "BAD_REQUEST", "The request could not be understood", request=request
        )
    return defaults.bad_request(request, exception or Exception())


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(403, "FORBIDDEN", "Permission denied", request=request)
    return defaults.permission_denied(request, exception or Exception())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(404, "NOT_FOUND", "Resource not found", request=request)
    return defaults.page_not_found(request, exception)


_SERVICE_UNAVAILABLE_HTML = (
    "<!doctype html><html lang='en'><head><title>Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1><p>Please try again in a moment.</p></body></html>"
)


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception (django.core.handlers.exception).
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        _log_server_error(exc, None)
        return _mark_logged(_service_unavailable(request))
    if is_api_path(request.path):
        return error_response(500, "INTERNAL_ERROR", GENERIC_500_MESSAGE, request=request)
    return defaults.server_error(request)


def _service_unavailable(request: HttpRequest) -> HttpResponse:
    error = ServiceUnavailableError()
    response: HttpResponse
    if is_api_path(request.path):
        response = error_response(
            error.status_code, error.code, error.message, error.details, request=request
        )
    else:  # the admin, the API docs: a page, not the envelope
        response = HttpResponse(_SERVICE_UNAVAILABLE_HTML, status=error.status_code)
    response["Retry-After"] = str(error.retry_after)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_path(request.path):
        return error_response(
            403, "FORBIDDEN", "CSRF verification failed", {"reason": reason}, request=request
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)
