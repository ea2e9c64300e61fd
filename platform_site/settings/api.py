"""The REST API: Django REST framework, the OpenAPI schema, request limits and CORS."""

from platform_site.env import env_int, env_list

API_VERSION = "1.0"
API_PATH_PREFIXES = ["/api/", "/health/"]
API_PAGE_SIZE_DEFAULT = 20
API_PAGE_SIZE_MAX = 100
# Request bodies: larger than this (bytes) is a 413 before the body is read (Django's
# setting, here from the environment); JSON nested deeper than this is a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 2_621_440)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 64)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["apps.core.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.PlatformJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares what each method needs (apps/rbac/drf.py); undeclared: refused.
    "DEFAULT_PERMISSION_CLASSES": ["apps.rbac.drf.HasPermission"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.PagePagination",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.negotiation.JSONFirstNegotiation",
    "EXCEPTION_HANDLER": "apps.core.error_handling.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNICODE_JSON": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Platform API",
    "DESCRIPTION": (
        "Multi-tenant platform API. Every response is an envelope: "
        "`{success, data, meta}` or `{success: false, error: {code, message, details}, meta}`."
    ),
    "VERSION": API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # 3.1: nullable fields as JSON Schema types, so responses validate with any JSON Schema tool.
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.openapi.envelope_hook",
    ],
}

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = [
    "X-Request-ID", "X-Response-Time", "X-RateLimit-Limit", "X-RateLimit-Remaining",
    "X-RateLimit-Reset", "Retry-After",
]  # fmt: skip
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "x-request-id", "x-tenant", "x-csrftoken",
]  # fmt: skip
