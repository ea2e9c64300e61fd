"""Where a second factor is enforced beyond sign-in: step-up for sensitive writes
(apps/mfa/step_up.py) and the platform operators' admin (apps/mfa/admin_site.py)."""

from platform_site.env import env_bool, env_int

# A sensitive write (password change, factor removal, role grants, identity providers)
# needs a second factor verified at most this many seconds before (the token's auth_time).
MFA_STEP_UP_SECONDS = env_int("MFA_STEP_UP_SECONDS", 600)
# Platform operators (staff of the public schema) without a confirmed second factor
# cannot enter the public admin. Off here; on by default in production settings.
MFA_REQUIRED_FOR_OPERATORS = env_bool("MFA_REQUIRED_FOR_OPERATORS", False)
