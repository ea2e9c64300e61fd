"""The stock stack of the scale benchmark: the same packages, wired as people usually wire them.

Same database, cache, models, password hashers and gunicorn settings as the platform
(bench.settings_scale, production settings), but the request path of a typical
django-tenants + DRF project:

- django-tenants' own backend and `TenantMainMiddleware` (a domain lookup in the
  database on every request), then startproject's middleware list;
- DRF with simplejwt's `JWTAuthentication` (HS256 with SECRET_KEY, the user read from
  the database on every request) and `IsAuthenticated`;
- django-ratelimit's decorator on each view, counting in the same Redis cache;
- `ModelSerializer`s, a `ListAPIView` with `PageNumberPagination` (a `COUNT(*)` per page);
- simplejwt's `TokenObtainPairView` for sign-in.

Django's default database options (no server-side parameter binding), with the same
CONN_MAX_AGE as the platform's. What it lacks next to the platform is listed in the
benchmark's report: tokens bound to a tenant, revocation on the next request, grants.
"""

from datetime import timedelta
from typing import Any

from bench.settings_scale import *  # noqa: F403
from bench.settings_scale import DATABASES

_UNSET = ("server_side_binding", "prepare_threshold")  # the platform's, not Django's defaults
_OPTIONS: dict[str, Any] = DATABASES["default"].get("OPTIONS") or {}  # type: ignore[assignment]
DATABASES = {
    "default": {
        **DATABASES["default"],
        "ENGINE": "django_tenants.postgresql_backend",
        "OPTIONS": {key: value for key, value in _OPTIONS.items() if key not in _UNSET},
    }
}
MIDDLEWARE = [
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "bench.urls_stock"
PUBLIC_SCHEMA_URLCONF = "bench.urls_stock"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
}
SIMPLE_JWT = {"ACCESS_TOKEN_LIFETIME": timedelta(minutes=60)}
RATELIMIT_USE_CACHE = "default"
