"""Notifications (apps/notifications/): providers per channel, retries, batching, Web Push."""

from platform_site.env import (
    debug_enabled,
    env_bool,
    env_int,
    env_list,
    env_str,
    platform_base_domain,
)

# One provider class per channel, by dotted path (apps/notifications/channels/).
# Mail goes through Django's mail backend (mail.py: SMTP when EMAIL_HOST is set, files
# under PLATFORM_LOCAL_DIR/mail otherwise, or any EMAIL_BACKEND such as anymail's). SMS
# and push default to console providers that write files under PLATFORM_LOCAL_DIR/sms and
# /push; set the real ones with their credentials.
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
VAPID_SUBJECT = env_str("VAPID_SUBJECT", f"mailto:no-reply@{platform_base_domain()}")
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
# notifications_send() writes this many at a time.
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
    "NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS", debug_enabled()
)
