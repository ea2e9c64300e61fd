"""Multi-factor sign-in (apps/mfa/). Its rate limit (`mfa_account`) is in accounts.py."""

from platform_site.env import env_int, env_str

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
