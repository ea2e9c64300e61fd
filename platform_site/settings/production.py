"""Production: nothing unsafe by default; refuses to start when misconfigured."""

from django.core.exceptions import ImproperlyConfigured

from platform_site.env import env_bool, env_int, env_str
from platform_site.settings.base import *
from platform_site.settings.base import ALLOWED_HOSTS, DEBUG, MIDDLEWARE, SECRET_KEY

if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak: use at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must list the served hosts (e.g. example.com,.example.com); '*' is refused."
    )

# TLS is terminated in front of the app: trust its X-Forwarded-Proto only when told to.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Operators' accounts reach every tenant: the public admin wants their second factor.
MFA_REQUIRED_FOR_OPERATORS = env_bool("MFA_REQUIRED_FOR_OPERATORS", True)

# gunicorn serves the admin's static files itself (collected into STATIC_ROOT at build time).
MIDDLEWARE = [
    *MIDDLEWARE[: MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1],
    "apps.core.middleware.BearerSkippingWhiteNoiseMiddleware",
    *MIDDLEWARE[MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1 :],
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Mail goes to EMAIL_HOST over SMTP; without one, fail loudly rather than write files.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

# Notifications: the real SMS and push providers, never the development ones that write
# files. Unconfigured, they fail transiently: deliveries wait and show in the admin.
NOTIFICATION_SMS_PROVIDER = env_str(
    "NOTIFICATION_SMS_PROVIDER", "apps.notifications.channels.sms.TwilioSmsProvider"
)
NOTIFICATION_PUSH_PROVIDER = env_str(
    "NOTIFICATION_PUSH_PROVIDER", "apps.notifications.channels.push.WebPushProvider"
)
