"""Make the OpenAPI schema describe responses as they are really sent.

drf-spectacular describes what views return; the envelope renderer and the
exception handler then wrap it. This post-processing hook applies the same
wrapping to the schema: every JSON success body becomes `{success, data, meta}`,
the error envelope is added for the statuses an operation can answer with, and
the headers every response carries are declared.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "timestamp", "version"],
    "properties": {
        "request_id": {"type": "string", "example": "req_4f0c2b6a9d1e4b5f8a7c3d2e1f0a9b8c"},
        "timestamp": {"type": "string", "format": "date-time"},
        "version": {"type": "string", "example": "1.0"},
    },
}

ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [
                        "BAD_REQUEST",
                        "UNAUTHORIZED",
                        "FORBIDDEN",
                        "NOT_FOUND",
                        "METHOD_NOT_ALLOWED",
                        "NOT_ACCEPTABLE",
                        "CONFLICT",
                        "UNSUPPORTED_MEDIA_TYPE",
                        "VALIDATION_ERROR",
                        "RATE_LIMITED",
                        "INTERNAL_ERROR",
                        "SERVICE_UNAVAILABLE",
                    ],
                },
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

_ERROR_DESCRIPTIONS = {
    "400": "Malformed request body (BAD_REQUEST)",
    "401": "Not authenticated (UNAUTHORIZED)",
    "403": "Not allowed (FORBIDDEN)",
    "404": "No such resource (NOT_FOUND)",
    "409": "Conflicts with an existing resource (CONFLICT)",
    "415": "Unsupported request content type (UNSUPPORTED_MEDIA_TYPE)",
    "422": "Invalid input; details name the fields (VALIDATION_ERROR)",
    "429": "Rate limit exceeded (RATE_LIMITED); see Retry-After",
    "500": "Unexpected error (INTERNAL_ERROR); nothing internal is disclosed",
    "503": "A service it depends on is down (SERVICE_UNAVAILABLE); see Retry-After",
}

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


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["500", "503"]  # 503: the database (or Redis) is unavailable
    if path.startswith(tuple(settings.RATE_LIMIT_PATH_PREFIXES)):
        statuses.append("429")
    security = operation.get("security")
    if security and {} not in security:
        statuses += ["401", "403"]
    if "{" in path:
        statuses.append("404")
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if "requestBody" in operation:
        statuses += ["400", "415", "422"]
    elif has_query:
        statuses.append("422")
    return sorted(set(statuses))


def envelope_hook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Meta"] = META_SCHEMA
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}

    for path, operations in result.get("paths", {}).items():
        rate_limited = path.startswith(tuple(settings.RATE_LIMIT_PATH_PREFIXES))
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            for status, response in responses.items():
                if str(status).startswith("2"):
                    for media, body in response.get("content", {}).items():
                        if "json" in media and "schema" in body:
                            body["schema"] = _wrap_success(body["schema"])
                elif str(status)[0] in "45":
                    # Errors a view declares itself (409, say) are sent as the error envelope too.
                    response["content"] = error_content
            # 409 is declared by the views that can conflict (extend_schema), not guessed here.
            for status in _error_statuses(path, method, operation):
                responses.setdefault(
                    status, {"description": _ERROR_DESCRIPTIONS[status], "content": error_content}
                )
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(_COMMON_HEADERS)
                if rate_limited:
                    headers.update(_RATE_LIMIT_HEADERS)
                if str(status) in ("429", "503"):
                    headers["Retry-After"] = {
                        "description": "Seconds to wait before retrying.",
                        "schema": {"type": "integer"},
                    }
    return result
