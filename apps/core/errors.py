"""The platform's domain errors: each carries a machine code and an HTTP status.

Services raise these; the one exception handler (`apps.core.error_handling`) turns
them, and every other error, into the error envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PlatformError(Exception):
    code: str = "INTERNAL_ERROR"
    status_code: int = 500
    message: str = "An unexpected error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.message)


class BadRequestError(PlatformError):
    code = "BAD_REQUEST"
    status_code = 400
    message = "The request could not be understood"


class ValidationError(PlatformError):
    code = "VALIDATION_ERROR"
    status_code = 422
    message = "Validation failed"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationError:
        return cls(details={field: [message]})


class UnauthorizedError(PlatformError):
    code = "UNAUTHORIZED"
    status_code = 401
    message = "Authentication required"


class ForbiddenError(PlatformError):
    code = "FORBIDDEN"
    status_code = 403
    message = "Permission denied"


class NotFoundError(PlatformError):
    code = "NOT_FOUND"
    status_code = 404
    message = "Resource not found"


class ConflictError(PlatformError):
    code = "CONFLICT"
    status_code = 409
    message = "Resource conflict"


class PayloadTooLargeError(PlatformError):
    code = "PAYLOAD_TOO_LARGE"
    status_code = 413
    message = "The request body is too large"

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__(
            f"The request body is larger than {max_bytes} bytes.", details={"max_bytes": max_bytes}
        )


class RateLimitedError(PlatformError):
    code = "RATE_LIMITED"
    status_code = 429
    message = "Rate limit exceeded"

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailableError(PlatformError):
    code = "SERVICE_UNAVAILABLE"
    status_code = 503
    message = "A service the platform depends on is unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class TransientError(Exception):
    """A failure a later attempt may not meet (a provider timed out, a server was away).
    The jobs retry it (`apps.jobs.retries.TRANSIENT_ERRORS`); apps subclass it for their own
    (`apps.notifications.channels.base.TransientProviderError`). Not an API error."""
