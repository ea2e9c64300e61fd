"""Request context: request id, timing header and the one access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as LibraryAuthenticationMiddleware,
)
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as LibrarySessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty
from whitenoise.middleware import (  # type: ignore[import-untyped]
    WhiteNoiseMiddleware as LibraryWhiteNoiseMiddleware,
)

from apps.core.context import request_id_var, request_var
from apps.core.logging import log_rendered

# A client may name its own request id (to follow a call across services) if it
# is a sane token: no spaces, quotes or control characters that could forge log lines.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")

access_logger = logging.getLogger("platform.access")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def request_user_id(request: HttpRequest) -> int | str | None:
    """The authenticated user's id, without forcing a lazy (session) lookup."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:  # type: ignore[attr-defined]
        return None
    if getattr(user, "is_authenticated", False):
        return user.pk
    return None


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID_RE.fullmatch(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        request_token = request_var.set(request)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
            response["X-Request-ID"] = request_id
            response["X-Response-Time"] = f"{duration_ms:.2f}ms"
            tenant = getattr(request, "tenant", None)
            log_rendered(
                access_logger,
                logging.INFO,
                "request",
                tenant=getattr(tenant, "schema_name", None),
                user=request_user_id(request),
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round(duration_ms, 2),
            )
            return response
        finally:
            structlog.contextvars.clear_contextvars()
            request_id_var.reset(token)
            request_var.reset(request_token)


class RequestSizeMiddleware:
    """An API request whose Content-Length is over DATA_UPLOAD_MAX_MEMORY_SIZE is answered
    413 (PAYLOAD_TOO_LARGE) before anything reads its body. (Django refuses such a body only
    when a view reads it, with an exception that DRF's views would answer 500.) It sits
    after the gateway, so the request counts against the rate limit and the answer carries
    its headers like any other. Other paths (the admin's forms and uploads) keep Django's way.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.prefixes = tuple(settings.API_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith(self.prefixes):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # what Django and DRF make of it too: no body is read
            if length > limit:
                from apps.core.envelope import error_response
                from apps.core.errors import PayloadTooLargeError

                error = PayloadTooLargeError(max_bytes=limit)
                return error_response(
                    error.status_code, error.code, error.message, error.details, request=request
                )
        return self.get_response(request)


def bearer_api_request(request: HttpRequest) -> bool:
    """An API request that authenticates with a bearer token.

    Such a request has no use for the browser's machinery: it is not authenticated by its
    cookies (the token is checked first, and a bad token is a 401, never a fall back to the
    session), so it needs no session, no messages and no static files. (Django's CSRF
    middleware stays for every request, as its deploy check asks: for DRF's views it only
    looks at the view's csrf_exempt mark.)
    """
    from django.conf import settings

    return request.path.startswith(tuple(settings.API_PATH_PREFIXES)) and (
        request.META.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer "
    )


class _BrowserOnly:
    """Mixed into a middleware that only browser requests need: bearer API requests pass."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if bearer_api_request(request):
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class BearerSkippingSessionMiddleware(_BrowserOnly, LibrarySessionMiddleware):
    """Django's sessions, for the admin, the API docs and session-authenticated API calls."""


class BearerSkippingAuthenticationMiddleware(_BrowserOnly, LibraryAuthenticationMiddleware):
    """Django's request.user from the session (DRF sets it for bearer requests)."""


class BearerSkippingWhiteNoiseMiddleware(_BrowserOnly, LibraryWhiteNoiseMiddleware):
    """WhiteNoise's static files, which no API path is."""


class AdminMessageMiddleware(MessageMiddleware):
    """Django's messages (the admin's "saved" banners) everywhere but the API, which has none:
    API requests, bearer or not, pass it by."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        super().__init__(get_response)
        self.skipped = tuple(settings.API_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(self.skipped):
            return self.get_response(request)  # type: ignore[return-value]
        return super().__call__(request)  # type: ignore[return-value]
