"""Multi-factor sign-in (apps/mfa/). Its rate limit (`mfa_account`) is in accounts.py."""

from platform_site.env import env_int, env_list, env_str

# A sign-in waits this long for its second factor (the mfa_token's lifetime).
MFA_CHALLENGE_SECONDS = env_int("MFA_CHALLENGE_SECONDS", 300)
# Wrong second factors one sign-in challenge accepts before it is spent.
MFA_CHALLENGE_MAX_ATTEMPTS = env_int("MFA_CHALLENGE_MAX_ATTEMPTS", 5)
# The issuer authenticator apps show next to the account (the otpauth:// URI's issuer);
# empty: the tenant's name.
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "")
# A factor not confirmed within this many hours is deleted by the daily cleanup.
MFA_UNCONFIRMED_FACTOR_HOURS = env_int("MFA_UNCONFIRMED_FACTOR_HOURS", 24)
# At most one "failed second factor" notice per user in this many minutes.
MFA_FAILED_NOTICE_MINUTES = env_int("MFA_FAILED_NOTICE_MINUTES", 15)

# WebAuthn (apps/mfa/webauthn_flows.py). The relying party id: empty, the host the client
# used (a key then works on that host only); set to a parent domain of the tenants' hosts
# (e.g. "example.com") for keys that work on every host under it. Hosts outside it keep
# their own.
MFA_WEBAUTHN_RP_ID = env_str("MFA_WEBAUTHN_RP_ID", "")
# The name a browser shows when it asks for the key; empty: the tenant's name.
MFA_WEBAUTHN_RP_NAME = env_str("MFA_WEBAUTHN_RP_NAME", "")
# Origins accepted besides https://<the host the client used> (and http://<host> while
# PLATFORM_URL_SCHEME is http), e.g. a front end served from another host.
MFA_WEBAUTHN_ORIGINS = env_list("MFA_WEBAUTHN_ORIGINS", [])
