"""Settings shared by every environment: Django's core here, each other topic in a module of
its own (imported at the end). Everything that differs comes from the environment.

See the configuration table in docs/configuration.md for each variable.
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext

from platform_site.env import (
    debug_enabled,
    env_int,
    env_list,
    env_str,
    local_dir,
    platform_base_domain,
)

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parents[2]

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = debug_enabled()

PLATFORM_BASE_DOMAIN = platform_base_domain()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [PLATFORM_BASE_DOMAIN, f".{PLATFORM_BASE_DOMAIN}"])
# Links the platform builds (OIDC callback, discovery's jwks_uri, e-mailed links):
# their scheme, and for links mailed without a request to copy the host from, the port
# (empty: the scheme's default). Local settings: http and WEB_PORT, as runserver serves.
PLATFORM_URL_SCHEME = env_str("PLATFORM_URL_SCHEME", "https")
PLATFORM_URL_PORT = env_int("PLATFORM_URL_PORT", 0) or None
# Files for a developer (mail, SMS and push when no provider is set, tenant exports).
LOCAL_DIR = local_dir()

# ------------------------------------------------------------------ applications
SHARED_APPS = [
    # Before django_tenants: of two management commands with one name, Django runs the one
    # of the app listed first, and apps.tenants replaces django-tenants' create_tenant,
    # delete_tenant, clone_tenant, ... (which bypass the services).
    "apps.tenants",
    "django_tenants",
    "apps.core",
    "apps.jobs",
    "apps.accounts",
    "apps.audit",  # operators' changes in public are audited like users' in a tenant
    "apps.keys",  # token signing keys: public schema only
    "apps.mfa",  # operators' second factors in public, users' in each tenant
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "apps.mfa.admin_config.MfaAdminConfig",  # the admin asks staff for their second factor
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_celery_beat",
    "django.contrib.postgres",
]
# Each tenant's schema: its users and everything they own. Apps in both lists
# have their tables in public (for platform operators) and in every tenant.
TENANT_APPS = [
    "django.contrib.postgres",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "apps.mfa.admin_config.MfaAdminConfig",  # the admin asks staff for their second factor
    "apps.core",
    "apps.jobs",
    "apps.accounts",
    "apps.organizations",
    "apps.rbac",
    "apps.audit",
    "apps.notifications",
    "apps.sso",
    "apps.invitations",
    "apps.mfa",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

MIDDLEWARE = [
    # First: times the whole chain, and answers /metrics on any host (METRICS_ENABLED).
    "apps.core.metrics.middleware.MetricsMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "apps.tenants.middleware.TenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.BearerSkippingSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "apps.core.middleware.BearerSkippingAuthenticationMiddleware",
    "apps.core.gateway.middleware.GatewayMiddleware",
    "apps.core.middleware.RequestSizeMiddleware",
    "apps.core.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "platform_site.urls"
PUBLIC_SCHEMA_URLCONF = "platform_site.urls_public"
WSGI_APPLICATION = "platform_site.wsgi.application"
ASGI_APPLICATION = "platform_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
CSRF_FAILURE_VIEW = "apps.core.error_handling.csrf_failure"

# ------------------------------------------------------------------ database
# DATABASE_URL, DATABASE_POOLER, DATABASES: platform_site/settings/database.py

# ------------------------------------------------------------------ auth
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.EmailBackend",
    # The tenant admin's permissions, from roles (a tenant's admin page needs its API's).
    "apps.rbac.backends.RolePermissionBackend",
]
# The e-mail is unique among *live* users only (a partial unique index), which
# Django's check cannot see; the backend looks users up among live users.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
PASSWORD_HASHERS = [
    # Argon2id at OWASP's minimum (19 MiB, t=2, p=1) instead of Django's default
    # (100 MiB, p=8): the same protection per guess, and concurrent logins cannot
    # take a worker's memory. Old hashes are upgraded at the next sign-in.
    "apps.accounts.hashers.PlatformArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# ------------------------------------------------------------------ i18n, static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# ------------------------------------------------------------------ topics
from platform_site.settings.accounts import *
from platform_site.settings.api import *
from platform_site.settings.cache import *
from platform_site.settings.celery import *
from platform_site.settings.database import *
from platform_site.settings.gateway import *
from platform_site.settings.health import *
from platform_site.settings.invitations import *
from platform_site.settings.jobs import *
from platform_site.settings.keys import *
from platform_site.settings.logging import *
from platform_site.settings.mail import *
from platform_site.settings.metrics import *
from platform_site.settings.mfa import *
from platform_site.settings.notifications import *
from platform_site.settings.sso import *
from platform_site.settings.step_up import *
from platform_site.settings.telemetry import *
from platform_site.settings.tenants import *
