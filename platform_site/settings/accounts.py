"""Sign-in, sessions and tokens, password reset and e-mail change, brute-force limits."""

from datetime import timedelta

from platform_site.env import env_int, env_str

# simplejwt builds the claims; the tokens are signed with the Ed25519 (EdDSA) key pairs
# of apps.keys (keys.py), so no SIGNING_KEY here.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 14)),
    "ALGORITHM": "EdDSA",
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
# The sign-in link of the welcome mail ({scheme}, {host} as above): your front end's sign-in
# page. Empty: the tenant's admin for staff users, its API docs (sign in there) for others.
SIGN_IN_URL = env_str("SIGN_IN_URL", "")
# Soft-deleted users are purged after this many days (by the cleanup job).
USER_RETENTION_DAYS = env_int("USER_RETENTION_DAYS", 30)

# Brute-force limits on sign-in, refresh, reset and single sign-on: sliding logs in Redis,
# per client address and per account, in the tenant's namespace (apps/accounts/limits.py).
# The API-wide limit (API_RATE_LIMIT, gateway.py) is the gateway's own counter.
AUTH_RATE_LIMITS_ENABLED = True
AUTH_RATE_LIMITS = {
    "login_ip": env_str("AUTH_RATE_LOGIN_IP", "30/m"),
    "login_account": env_str("AUTH_RATE_LOGIN_ACCOUNT", "5/5m"),
    "refresh_ip": env_str("AUTH_RATE_REFRESH_IP", "60/m"),
    "refresh_account": env_str("AUTH_RATE_REFRESH_ACCOUNT", "30/m"),
    "reset_ip": env_str("AUTH_RATE_RESET_IP", "10/h"),
    "reset_account": env_str("AUTH_RATE_RESET_ACCOUNT", "3/h"),
    "sso_ip": env_str("AUTH_RATE_SSO_IP", "30/m"),
    # Second-factor attempts per account that did not succeed, across sign-in challenges
    # and step-ups (a new password sign-in does not reset them).
    "mfa": env_str("AUTH_RATE_MFA", "5/5m"),
}
