"""Settings shared by every environment. Everything that differs comes from the environment.

See the configuration table in README.md for each variable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from apps.core.logging import logging_config
from platform_site.env import env_bool, env_int, env_list, env_str, redis_db_url

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parents[2]

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)

PLATFORM_BASE_DOMAIN = env_str("PLATFORM_BASE_DOMAIN", "localhost").lower()
# Hosts that serve the platform itself (operators, tenant provisioning) from the public schema.
PUBLIC_HOSTS = env_list("PUBLIC_HOSTS", [PLATFORM_BASE_DOMAIN])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [PLATFORM_BASE_DOMAIN, f".{PLATFORM_BASE_DOMAIN}"])

# ------------------------------------------------------------------ applications
SHARED_APPS = [
    # Before django_tenants: of two management commands with one name, Django runs the one
    # of the app listed first, and apps.tenants replaces django-tenants' create_tenant,
    # delete_tenant, clone_tenant, ... (which bypass the services).
    "apps.tenants",
    "django_tenants",
    "apps.core",
    "apps.accounts",
    "apps.audit",  # operators' changes in public are audited like users' in a tenant
    "apps.keys",  # token signing keys: public schema only
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "apps.core.admin_site.PlatformAdminConfig",
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
    "apps.core.admin_site.PlatformAdminConfig",
    "apps.core",
    "apps.accounts",
    "apps.organizations",
    "apps.rbac",
    "apps.audit",
    "apps.notifications",
    "apps.sso",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenant schemas are clones of this one (kept migrated by migrate_schemas).
TENANT_TEMPLATE_SCHEMA = "tenant_template"
GET_EXECUTOR_FUNCTION = "apps.tenants.migration_executor.get_executor"
# Issue `SET search_path` only when the schema changes, not before every query.
TENANT_LIMIT_SET_CALLS = True
TENANT_CACHE_SECONDS = env_int("TENANT_CACHE_SECONDS", 300)
TENANT_CACHE_LOCAL_SECONDS = env_int("TENANT_CACHE_LOCAL_SECONDS", 5)
TENANT_CACHE_MISS_SECONDS = 30
# `X-Tenant: <slug>` on the public API host selects a tenant (for clients that cannot set Host).
TENANT_HEADER_ENABLED = env_bool("TENANT_HEADER_ENABLED", False)
TENANT_HEADER_HOSTS = env_list("TENANT_HEADER_HOSTS", PUBLIC_HOSTS)
TENANT_UNSCOPED_PATH_PREFIXES = ["/health/"]
# A deleted tenant's schema and data are dropped this many days later (tenants.purge_deleted);
# until then it can be restored.
TENANT_RETENTION_DAYS = env_int("TENANT_RETENTION_DAYS", 30)
if TENANT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("TENANT_RETENTION_DAYS must be 0 or more.")

MIDDLEWARE = [
    "apps.core.middleware.RequestContextMiddleware",
    "apps.core.middleware.NoOriginShortcutCorsMiddleware",
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

# ------------------------------------------------------------------ database
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. `python3 run.py` starts an embedded PostgreSQL and sets it for you."
    )
DATABASES = {
    "default": {
        **dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        ),
        "ENGINE": "apps.core.dbbackend",
    }
}
if env_bool("DB_PREPARED_STATEMENTS", True):
    # Server-side parameters and psycopg's prepared statements: a statement run a few times
    # on a connection is parsed and planned once, not on every request (a sign-in's read
    # spent more time in the planner than executing). Django turns them off by default for
    # connection poolers: behind PgBouncer in transaction mode (before 1.21, or without
    # max_prepared_statements) set DB_PREPARED_STATEMENTS=false.
    DATABASES["default"]["OPTIONS"] = {
        **dict(DATABASES["default"].get("OPTIONS") or {}),  # type: ignore[call-overload]
        "server_side_binding": True,
        "prepare_threshold": env_int("DB_PREPARE_THRESHOLD", 5),
    }
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------ cache (Redis)
REDIS_URL = env_str("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. `python3 run.py` starts an embedded Redis and sets it for you."
    )
_REDIS_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SOCKET_CONNECT_TIMEOUT": 1,
    "SOCKET_TIMEOUT": 1,
    # Every new connection first applies the invalidations Redis missed while it was away
    # (apps/core/invalidation.py), so a restarted Redis never serves a revoked session.
    "CONNECTION_POOL_CLASS": "apps.core.invalidation.ReplayingConnectionPool",
}
CACHES = {
    # Tenant data: every key is prefixed with the current schema.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform"),
        "KEY_FUNCTION": "apps.core.cache.make_key",
        "OPTIONS": _REDIS_OPTIONS,
    },
    # Platform data that belongs to no tenant (tenant lookup by host): unprefixed by schema.
    "shared": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform") + ":shared",
        "OPTIONS": _REDIS_OPTIONS,
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# ------------------------------------------------------------------ Celery
# The broker: CELERY_BROKER_URL (RabbitMQ amqp:// or Redis), else the cache's
# Redis server on the next database number, so a cache flush never drops queued tasks.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or redis_db_url(REDIS_URL, 1)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis broker: an unacknowledged task (worker killed) is redelivered after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_TENANT_CACHE_SECONDS = 30
CELERY_TIMEZONE = "UTC"

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

# ------------------------------------------------------------------ tokens (JWT)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 14)),
    "ALGORITHM": "HS256",
    "AUDIENCE": env_str("JWT_AUDIENCE", "platform-api"),
    "ISSUER": env_str("JWT_ISSUER", "platform"),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_TYPE_CLAIM": "type",
    "JTI_CLAIM": "jti",
    "LEEWAY": 5,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
# A session (refresh family) ends this long after login, however often it is refreshed.
SESSION_MAX_AGE = timedelta(days=env_int("SESSION_MAX_AGE_DAYS", 30))
# The replaced refresh token may be presented again this long after a rotation
# (two tabs refreshing at once) and is refused without revoking the session.
REFRESH_REUSE_GRACE_SECONDS = 10
PASSWORD_RESET_TIMEOUT_MINUTES = env_int("PASSWORD_RESET_TIMEOUT_MINUTES", 60)
# Where the e-mailed link points: a page of your front end that posts the token
# to /api/v1/auth/password/reset/confirm. {host} is the tenant's primary domain
# (with PLATFORM_URL_PORT when set).
PASSWORD_RESET_URL = env_str("PASSWORD_RESET_URL", "{scheme}://{host}/reset-password?token={token}")
# A changed e-mail address takes effect when its owner opens this link (a page of your front
# end that posts the token to /api/v1/auth/email/confirm) within this many minutes.
EMAIL_CHANGE_TIMEOUT_MINUTES = env_int("EMAIL_CHANGE_TIMEOUT_MINUTES", 1440)
EMAIL_CHANGE_CONFIRM_URL = env_str(
    "EMAIL_CHANGE_CONFIRM_URL", "{scheme}://{host}/confirm-email?token={token}"
)
# Links the platform builds (OIDC callback, discovery's jwks_uri, e-mailed links):
# their scheme, and for links mailed without a request to copy the host from, the port
# (empty: the scheme's default). Local settings: http and WEB_PORT, as runserver serves.
PLATFORM_URL_SCHEME = env_str("PLATFORM_URL_SCHEME", "https")
PLATFORM_URL_PORT = env_int("PLATFORM_URL_PORT", 0) or None
# The sign-in link of the welcome mail ({scheme}, {host} as above): your front end's sign-in
# page. Empty: the tenant's admin for staff users, its API docs (sign in there) for others.
SIGN_IN_URL = env_str("SIGN_IN_URL", "")
# Soft-deleted users are purged after this many days (by the cleanup job).
USER_RETENTION_DAYS = env_int("USER_RETENTION_DAYS", 30)

# Brute-force limits on sign-in, refresh, reset and single sign-on: sliding logs in Redis,
# per client address and per account, in the tenant's namespace (apps/accounts/limits.py).
# The API-wide limit (API_RATE_LIMIT below) is the gateway's own counter.
AUTH_RATE_LIMITS_ENABLED = True
AUTH_RATE_LIMITS = {
    "login_ip": env_str("AUTH_RATE_LOGIN_IP", "30/m"),
    "login_account": env_str("AUTH_RATE_LOGIN_ACCOUNT", "5/5m"),
    "refresh_ip": env_str("AUTH_RATE_REFRESH_IP", "60/m"),
    "refresh_account": env_str("AUTH_RATE_REFRESH_ACCOUNT", "30/m"),
    "reset_ip": env_str("AUTH_RATE_RESET_IP", "10/h"),
    "reset_account": env_str("AUTH_RATE_RESET_ACCOUNT", "3/h"),
}

# ------------------------------------------------------------------ API
API_VERSION = "1.0"
API_PATH_PREFIXES = ["/api/", "/health/"]
API_PAGE_SIZE_DEFAULT = 20
API_PAGE_SIZE_MAX = 100
# Gateway rate limit per client (user, else IP), per tenant; a tenant's settings
# may set its own {"rate_limit": "..."}. Empty disables it.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/m")
RATE_LIMIT_PATH_PREFIXES = ["/api/"]
RATE_LIMIT_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "platform") + ":rl"
# Who an API request counts as (apps/core/gateway/identity.py), tried in order (the first
# answer wins), else the session user, else the client address. Bearer tokens: the token's
# user and session state plus the user's grants are read in the rate limit's round trip.
GATEWAY_IDENTIFIERS = ["apps.rbac.gateway.bearer_identity_with_grants"]
# How many reverse proxies append to X-Forwarded-For in front of the app. 0: use REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
HEALTH_CHECK_TIMEOUT = 2
# Readiness asks the workers whether one consumes the default queue (apps/core/health.py):
# reported always; failing readiness only when required (the web serves without a worker).
READINESS_REQUIRE_WORKER = env_bool("READINESS_REQUIRE_WORKER", False)
READINESS_WORKER_TIMEOUT = 0.5
READINESS_WORKER_CACHE_SECONDS = 5
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

CSRF_FAILURE_VIEW = "apps.core.error_handling.csrf_failure"

# ------------------------------------------------------------------ email
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Platform <no-reply@{PLATFORM_BASE_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
LOCAL_DIR = Path(env_str("PLATFORM_LOCAL_DIR", str(BASE_DIR / ".local")))
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    # No mail server configured: keep mail as files a developer can open.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(LOCAL_DIR / "mail")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", EMAIL_BACKEND)

# ------------------------------------------------------------------ i18n, static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# ------------------------------------------------------------------ logging
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()  # gunicorn.conf.py reads it too, any case
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {LOG_LEVEL!r})."
    )
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = logging_config(json=LOG_FORMAT != "console", level=LOG_LEVEL)
# Django's error reports (the DEBUG page, mail_admins) hide secrets by name and by look,
# with DEBUG on too, in every frame, header, cookie, form field and query parameter.
DEFAULT_EXCEPTION_REPORTER = "apps.core.error_reports.SecretsHidingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.error_reports.SecretsHidingReporterFilter"

# ------------------------------------------------------------------ Notifications
# One provider class per channel, by dotted path (apps/notifications/channels/).
# Mail goes through Django's mail backend (EMAIL_* above: SMTP when EMAIL_HOST is
# set, files under PLATFORM_LOCAL_DIR/mail otherwise, or any EMAIL_BACKEND such as
# anymail's). SMS and push default to console providers that write files under
# PLATFORM_LOCAL_DIR/sms and /push; set the real ones with their credentials.
NOTIFICATION_EMAIL_PROVIDER = env_str(
    "NOTIFICATION_EMAIL_PROVIDER", "apps.notifications.channels.email.DjangoMailProvider"
)
NOTIFICATION_SMS_PROVIDER = env_str(
    "NOTIFICATION_SMS_PROVIDER", "apps.notifications.channels.sms.ConsoleSmsProvider"
)
NOTIFICATION_PUSH_PROVIDER = env_str(
    "NOTIFICATION_PUSH_PROVIDER", "apps.notifications.channels.push.ConsolePushProvider"
)
# Twilio-style SMS (apps.notifications.channels.sms.TwilioSmsProvider).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
TWILIO_BASE_URL = env_str("TWILIO_BASE_URL", "https://api.twilio.com")
# Provider URLs such as TWILIO_BASE_URL must be https at public addresses (every call
# goes through apps/core/outbound.py); on: also this machine (plain http too) and
# private networks, for a gateway of your own or a local stub.
NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES = env_bool(
    "NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES", False
)
# Web Push (apps.notifications.channels.push.WebPushProvider): the VAPID key pair
# (private key as PEM or base64url DER/raw; the public key is what browsers subscribe with).
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY")
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY")
VAPID_SUBJECT = env_str("VAPID_SUBJECT", f"mailto:no-reply@{PLATFORM_BASE_DOMAIN}")
# Seconds a push service keeps a message for an offline device.
WEBPUSH_TTL_SECONDS = env_int("WEBPUSH_TTL_SECONDS", 86_400)
# Timeout of every provider HTTP call, in seconds.
NOTIFICATION_HTTP_TIMEOUT = env_int("NOTIFICATION_HTTP_TIMEOUT", 10)
# Transient failures are retried with exponential backoff (base * 2**n, with jitter,
# capped) until a delivery has made this many attempts; then it is failed.
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5)
NOTIFICATION_RETRY_BASE_SECONDS = env_int("NOTIFICATION_RETRY_BASE_SECONDS", 30)
NOTIFICATION_RETRY_MAX_SECONDS = env_int("NOTIFICATION_RETRY_MAX_SECONDS", 480)
# A provider's circuit breaker opens after this many consecutive failures (shared by
# every worker through Redis) and lets a trial call through after the reset timeout.
NOTIFICATION_BREAKER_FAIL_MAX = env_int("NOTIFICATION_BREAKER_FAIL_MAX", 5)
NOTIFICATION_BREAKER_RESET_SECONDS = env_int("NOTIFICATION_BREAKER_RESET_SECONDS", 60)
# notify_many() writes this many at a time.
NOTIFICATION_CHUNK_SIZE = env_int("NOTIFICATION_CHUNK_SIZE", 500)
# Channels whose deliveries a worker sends itself right after committing them, in the
# task that wrote them (a welcome, a batch chunk), over one connection, instead of a
# `deliver` task each; retries still go through `deliver`. Empty: always a task.
NOTIFICATION_INLINE_CHANNELS = env_list("NOTIFICATION_INLINE_CHANNELS", ["email"])
# A worker claims a delivery (committed) before calling its provider and records the
# outcome (committed) before the next one. A claim older than this many seconds is a
# worker that died in the call: the delivery is sent again (the one possible duplicate).
# Keep it above the longest one provider call can take (EMAIL_TIMEOUT and
# NOTIFICATION_HTTP_TIMEOUT are per network step).
NOTIFICATION_CLAIM_SECONDS = env_int("NOTIFICATION_CLAIM_SECONDS", 300)
# A send to many (POST /notifications/send) fans out in tasks of this many recipients.
NOTIFICATION_BATCH_CHUNK = env_int("NOTIFICATION_BATCH_CHUNK", 500)
# Web Push endpoints users may register: https at these push services (host suffixes,
# comma-separated); unset: the browsers' own (apps/notifications/inbox.py).
# Whatever the list, the worker connects to public addresses only (apps/core/outbound.py).
if _webpush_hosts := env_list("NOTIFICATION_WEBPUSH_HOSTS", []):
    NOTIFICATION_WEBPUSH_HOSTS = _webpush_hosts
# http://localhost push endpoints (127.0.0.1, ::1), for development only.
NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS = env_bool(
    "NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS", DEBUG
)

# ------------------------------------------------------------------ Jobs
# Celery would close the database connection around every task; platform_site/celery.py
# instead closes it as Django does between requests (unusable, or older than
# DB_CONN_MAX_AGE). This only stops Celery's own closing until this many tasks.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 100_000)
# Retries with exponential backoff for transient errors only (apps/core/jobs.py
# TRANSIENT_ERRORS), at most this many times; then the failure is recorded as a
# JobFailure (admin) instead of looping. The backoff ceiling stays below the
# Redis broker's visibility timeout, so a waiting retry is never delivered twice.
JOBS_MAX_RETRIES = env_int("JOBS_MAX_RETRIES", 5)
JOBS_RETRY_BACKOFF_MAX = env_int("JOBS_RETRY_BACKOFF_MAX", 300)
# A periodic job's run for one tenant holds a Redis flag from enqueue to finish;
# the next fan-out skips that tenant meanwhile. The flag expires after this long
# (a lost worker never blocks a tenant for longer).
JOBS_FANOUT_LOCK_SECONDS = env_int("JOBS_FANOUT_LOCK_SECONDS", 3600)
# The cleanup job deletes dispatched outbox events and consumed-event marks older than this.
JOBS_EVENT_RETENTION_DAYS = env_int("JOBS_EVENT_RETENTION_DAYS", 30)
# Redis broker: a killed worker's unacknowledged tasks come back after the
# visibility timeout, looked for every `unacked_restore_interval` seconds (kombu
# would otherwise look only every 100 s). `socket_connect_timeout` and the publish
# retry policy bound how long a request waits on a broker that is down: the
# event stays in the outbox and the relay sends it later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "visibility_timeout": env_int(
        "CELERY_VISIBILITY_TIMEOUT", CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    ),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
    # A worker killed while it sweeps holds the sweep's lock until this expires, and no
    # worker restores anything meanwhile (kombu's default: 5 minutes). A sweep takes
    # milliseconds.
    "unacked_mutex_expire": env_int("CELERY_UNACKED_MUTEX_EXPIRE", 30),
    "socket_connect_timeout": 3,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# A task still running when the broker connection drops is redelivered anyway
# (acks late): stop it rather than let two copies run.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# SSO
# Fernet key for identity providers' client secrets at rest (32 url-safe base64 bytes);
# empty: derived from SECRET_KEY (changing that key then asks for the secrets again).
SSO_ENCRYPTION_KEY = env_str("SSO_ENCRYPTION_KEY", "")
SSO_HTTP_TIMEOUT_SECONDS = env_int("SSO_HTTP_TIMEOUT_SECONDS", 5)
# Every call to an identity provider (discovery, token, JWKS, UserInfo) goes through
# apps/core/outbound.py: https to public addresses only, checked when connecting.
# Issuers over plain http on localhost/127.0.0.1/::1 (a provider run locally); never in production.
SSO_ALLOW_LOOPBACK_HTTP = env_bool("SSO_ALLOW_LOOPBACK_HTTP", False)
# https issuers and endpoints at private, loopback or link-local addresses are refused (a
# tenant admin must not reach the platform's own network); turn on for an identity
# provider on your internal network.
SSO_ALLOW_PRIVATE_ADDRESSES = env_bool("SSO_ALLOW_PRIVATE_ADDRESSES", False)
SSO_JWKS_CACHE_SECONDS = env_int("SSO_JWKS_CACHE_SECONDS", 300)
SSO_JWKS_REFETCH_COOLDOWN_SECONDS = env_int("SSO_JWKS_REFETCH_COOLDOWN_SECONDS", 10)
SSO_CLOCK_SKEW_SECONDS = env_int("SSO_CLOCK_SKEW_SECONDS", 60)
# A sign-in must come back from the provider within this long; its one-time code lives 60 s.
SSO_STATE_TTL_SECONDS = env_int("SSO_STATE_TTL_SECONDS", 600)
SSO_EXCHANGE_CODE_SECONDS = env_int("SSO_EXCHANGE_CODE_SECONDS", 60)
AUTH_RATE_LIMITS = {**AUTH_RATE_LIMITS, "sso_ip": env_str("AUTH_RATE_SSO_IP", "30/m")}

# ------------------------------------------------------------------ Signing keys
# Access and refresh tokens are signed with Ed25519 (EdDSA) key pairs kept in
# apps.keys (public schema) and published at /.well-known/jwks.json; SIMPLE_JWT's
# ALGORITHM / SIGNING_KEY sign nothing (simplejwt still builds the claims).
SIMPLE_JWT["ALGORITHM"] = "EdDSA"
SIMPLE_JWT.pop("SIGNING_KEY", None)
# Secrets the private keys are encrypted with at rest (first encrypts, all decrypt);
# empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS).
JWT_KEY_ENCRYPTION_KEYS = env_list("JWT_KEY_ENCRYPTION_KEYS", [])
# A process re-reads which key signs at most this long after a rotation elsewhere
# (the previous key keeps verifying meanwhile; a new kid is looked up at once).
SIGNING_KEYS_CACHE_SECONDS = env_int("SIGNING_KEYS_CACHE_SECONDS", 60)
# Cache-Control max-age of /.well-known/jwks.json and openid-configuration.
WELL_KNOWN_MAX_AGE_SECONDS = env_int("WELL_KNOWN_MAX_AGE_SECONDS", 300)

# ------------------------------------------------------------------ Tenant export
# Tenant archives (`manage.py tenant_export`, POST /api/v1/tenants/{id}/exports) are written
# here, readable by this user only: they hold the tenant's users with their password
# hashes. Web and worker must see the same directory (a shared volume), since the worker
# writes what the web serves for download.
TENANT_EXPORT_DIR = Path(env_str("TENANT_EXPORT_DIR", "") or LOCAL_DIR / "exports")
# An export job is stopped after this many seconds. A job found running for longer is
# taken as a lost worker's and written again.
TENANT_EXPORT_TIME_LIMIT = env_int("TENANT_EXPORT_TIME_LIMIT", 3600)
