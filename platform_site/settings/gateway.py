"""The API gateway (apps/core/gateway/): who a request counts as, and its rate limit."""

from platform_site.env import env_int, env_str

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
