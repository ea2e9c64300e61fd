"""Make the OpenAPI schema describe responses as they are really sent.

drf-spectacular describes what views return; the envelope renderer and the
exception handler then wrap it. This post-processing hook applies the same
wrapping to the schema: every JSON success body becomes `{success, data, meta}`,
the error envelope is added for every status an operation can answer with, each
naming the error codes it can carry, and the headers every response carries are
declared.

Which errors an operation can answer is decided here, by rules that hold for every
operation (any request may be too large or ask for XML; a path with an id may name
nothing), from what drf-spectacular knows (security, path, query and body
parameters). What only a view knows (a 409, a 422 from a service, a code of its
own such as SSO_REQUIRED) it declares with `documented_error` in its `extend_schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse

from apps.core.pagination import PagePagination

META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "timestamp", "version"],
    "properties": {
        "request_id": {"type": "string", "example": "req_4f0c2b6a9d1e4b5f8a7c3d2e1f0a9b8c"},
        "timestamp": {"type": "string", "format": "date-time"},
        "version": {"type": "string", "example": "1.0"},
    },
}


@dataclass(frozen=True)
class ErrorStatus:
    code: str  # the code every error of this status may carry
    description: str


# Every error status the API answers with, and the code it carries (apps.core.envelope,
# apps.core.error_handling). 405 belongs to no operation: it answers a method a path
# does not have.
ERROR_STATUSES: dict[int, ErrorStatus] = {
    400: ErrorStatus(
        "BAD_REQUEST",
        "The request could not be understood: malformed JSON, JSON nested too deeply, "
        "too many query parameters",
    ),
    401: ErrorStatus("UNAUTHORIZED", "Not authenticated, or the credentials are invalid"),
    403: ErrorStatus("FORBIDDEN", "Not allowed"),
    404: ErrorStatus("NOT_FOUND", "No such resource"),
    405: ErrorStatus("METHOD_NOT_ALLOWED", "The path has no such method"),
    406: ErrorStatus("NOT_ACCEPTABLE", "`Accept` asks for something other than JSON"),
    409: ErrorStatus("CONFLICT", "Conflicts with the current state"),
    413: ErrorStatus("PAYLOAD_TOO_LARGE", "The request body is too large"),
    415: ErrorStatus("UNSUPPORTED_MEDIA_TYPE", "The request body is not application/json"),
    422: ErrorStatus("VALIDATION_ERROR", "Invalid input; details name the fields"),
    429: ErrorStatus("RATE_LIMITED", "Rate limit exceeded; see Retry-After"),
    500: ErrorStatus("INTERNAL_ERROR", "Unexpected error; nothing internal is disclosed"),
    503: ErrorStatus(
        "SERVICE_UNAVAILABLE",
        "A service the platform depends on (database, cache) is unavailable; see Retry-After",
    ),
}

# Codes some operations answer instead of their status's own (each named by the view that
# can answer it, with `documented_error`): the status each comes with.
OPERATION_ERROR_CODES: dict[str, int] = {
    "SSO_REQUIRED": 403,  # password sign-in where the tenant requires SSO
    "SSO_STATE_INVALID": 400,  # an OIDC callback with an invalid, expired or used state
    "EMAIL_NOT_VERIFIED": 403,  # sign-in of a self-signed-up account not yet verified
    "SIGNUP_DISABLED": 403,  # self sign-up where the tenant has it off
    "INVITATION_INVALID": 422,  # a token that opens no pending invitation
    "INVITATION_STALE": 409,  # the inviter can no longer grant what the invitation offers
    "MFA_REQUIRED": 403,  # a sensitive write without a recent second factor (step-up)
}

ERROR_CODES: tuple[str, ...] = (
    *(status.code for status in ERROR_STATUSES.values()),
    *OPERATION_ERROR_CODES,
)

ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": list(ERROR_CODES)},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "For VALIDATION_ERROR: a list of messages per field.",
                    "additionalProperties": True,
                },
            },
        },
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
}

# Where a view's `documented_error` puts its codes, until the hook builds the envelope.
_CODES_KEY = "x-error-codes"

_COMMON_HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's id: the client's X-Request-ID if it was a sane token, else generated.",
        "schema": {"type": "string"},
    },
    "X-Response-Time": {
        "description": "Time the server spent on the request, e.g. `3.21ms`.",
        "schema": {"type": "string"},
    },
}

_RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed per window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until the current window ends.",
        "schema": {"type": "integer"},
    },
}

_RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer"},
}


def documented_error(description: str, *, codes: Sequence[str] = ()) -> OpenApiResponse:
    """An error a view can answer, for its `extend_schema(responses={status: ...})`.

    `codes` are the error codes of OPERATION_ERROR_CODES it can carry besides the
    status's own: `403: documented_error("SSO required", codes=["SSO_REQUIRED"])`.
    """
    unknown = [code for code in codes if code not in OPERATION_ERROR_CODES]
    if unknown:
        raise ValueError(f"Add {unknown} to OPERATION_ERROR_CODES in apps/core/openapi.py")
    return OpenApiResponse(
        response={_CODES_KEY: list(codes)} if codes else None, description=description
    )


def _wrap_success(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "meta"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "data": schema,
            "meta": {"$ref": "#/components/schemas/Meta"},
        },
    }


def _error_schema(status: int, extra_codes: Sequence[str]) -> dict[str, Any]:
    """The envelope of an error of this status: one component per status, narrowed to the
    codes it carries; inline where an operation adds codes of its own."""
    if not extra_codes:
        return {"$ref": f"#/components/schemas/Error{status}"}
    codes = [ERROR_STATUSES[status].code, *extra_codes]
    return {
        "allOf": [
            {"$ref": "#/components/schemas/ErrorEnvelope"},
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }


def _status_components() -> dict[str, Any]:
    return {
        f"Error{status}": {
            "allOf": [
                {"$ref": "#/components/schemas/ErrorEnvelope"},
                {"properties": {"error": {"properties": {"code": {"enum": [known.code]}}}}},
            ]
        }
        for status, known in ERROR_STATUSES.items()
    }


def _is_paginated(success: dict[str, Any]) -> bool:
    # `apps.core.pagination.paginated()` names its page schemas Paginated<Item>List.
    for media, body in success.get("content", {}).items():
        reference = body.get("schema", {}).get("$ref", "") if "json" in media else ""
        name = reference.rsplit("/", 1)[-1]
        if name.startswith("Paginated") and name.endswith("List"):
            return True
    return False


def _declare_page_parameters(operation: dict[str, Any]) -> None:
    """A paginated list takes ?page=&page_size= (a bad value is a 422), whether or not its
    view declared them."""
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    declared = {(p.get("in"), p.get("name")) for p in parameters}
    for parameter in PagePagination().get_schema_operation_parameters(view=None):  # type: ignore[arg-type]
        if ("query", parameter["name"]) not in declared:
            parameters.append(parameter)


def _error_statuses(path: str, operation: dict[str, Any]) -> list[int]:
    # Any request: too many query parameters (400), an Accept other than JSON (406), a body
    # over the size limit (413), the unexpected (500), the database or cache down (503).
    statuses = [400, 406, 413, 500, 503]
    if path.startswith(tuple(settings.RATE_LIMIT_PATH_PREFIXES)):
        statuses.append(429)
    security = operation.get("security") or []
    if any(requirement for requirement in security):
        statuses.append(401)  # credentials are checked when sent, even where optional
        if {} not in security:
            statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [415, 422]
    elif any(p.get("in") == "query" for p in operation.get("parameters", [])):
        statuses.append(422)
    return sorted(set(statuses))


def envelope_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Meta"] = META_SCHEMA
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    schemas.update(_status_components())

    for path, operations in result.get("paths", {}).items():
        rate_limited = path.startswith(tuple(settings.RATE_LIMIT_PATH_PREFIXES))
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            if any(_is_paginated(r) for s, r in responses.items() if str(s).startswith("2")):
                _declare_page_parameters(operation)
            for status, response in responses.items():
                if str(status).startswith("2"):
                    for media, body in response.get("content", {}).items():
                        if "json" in media and "schema" in body:
                            body["schema"] = _wrap_success(body["schema"])
                elif int(status) in ERROR_STATUSES:
                    # Errors a view declares itself (409, say) are sent as the error envelope.
                    declared = response.get("content", {}).get("application/json", {})
                    extra = declared.get("schema", {}).get(_CODES_KEY, [])
                    schema = _error_schema(int(status), extra)
                    response["content"] = {"application/json": {"schema": schema}}
            for error_status in _error_statuses(path, operation):
                known = ERROR_STATUSES[error_status]
                schema = _error_schema(error_status, [])
                responses.setdefault(
                    str(error_status),
                    {
                        "description": f"{known.description} ({known.code})",
                        "content": {"application/json": {"schema": schema}},
                    },
                )
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(_COMMON_HEADERS)
                if rate_limited:
                    headers.update(_RATE_LIMIT_HEADERS)
                if str(status) in ("429", "503"):
                    headers["Retry-After"] = _RETRY_AFTER_HEADER
            operation["responses"] = dict(sorted(responses.items()))
    return result
