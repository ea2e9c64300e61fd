"""OpenID Connect sign-in per tenant (apps/sso/). Its rate limit is in accounts.py."""

from platform_site.env import env_bool, env_int, env_str

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
