"""Invitations and self sign-up (apps/invitations/). Their rate limits join accounts.py's."""

from platform_site.env import env_int, env_str
from platform_site.settings.accounts import AUTH_RATE_LIMITS

# An invitation's link works this long after it was (re)sent.
INVITATION_EXPIRY_HOURS = env_int("INVITATION_EXPIRY_HOURS", 72)
# Where the invitation's link points: a page of your front end that posts the token, a
# password and a name to /api/v1/invitations/accept. {host} is the tenant's primary domain.
INVITATION_ACCEPT_URL = env_str(
    "INVITATION_ACCEPT_URL", "{scheme}://{host}/accept-invitation?token={token}"
)
# A self-signed-up address is verified by following this link (a page that posts the token
# to /api/v1/auth/email/verify) within this many hours.
EMAIL_VERIFY_URL = env_str("EMAIL_VERIFY_URL", "{scheme}://{host}/verify-email?token={token}")
EMAIL_VERIFY_HOURS = env_int("EMAIL_VERIFY_HOURS", 48)

AUTH_RATE_LIMITS.update(
    {
        # Accepting an invitation and verifying an address, per client address.
        "invitation_ip": env_str("AUTH_RATE_INVITATION_IP", "10/h"),
        # Sign-up per client address and per address signed up.
        "signup_ip": env_str("AUTH_RATE_SIGNUP_IP", "10/h"),
        "signup_account": env_str("AUTH_RATE_SIGNUP_ACCOUNT", "3/h"),
    }
)
