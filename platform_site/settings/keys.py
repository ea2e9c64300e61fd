"""Token signing keys (apps.keys, public schema), published at /.well-known/jwks.json."""

from platform_site.env import env_int, env_list

# Secrets the private keys are encrypted with at rest (first encrypts, all decrypt);
# empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS).
JWT_KEY_ENCRYPTION_KEYS = env_list("JWT_KEY_ENCRYPTION_KEYS", [])
# A process re-reads which key signs at most this long after a rotation elsewhere
# (the previous key keeps verifying meanwhile; a new kid is looked up at once).
SIGNING_KEYS_CACHE_SECONDS = env_int("SIGNING_KEYS_CACHE_SECONDS", 60)
# Cache-Control max-age of /.well-known/jwks.json and openid-configuration.
WELL_KNOWN_MAX_AGE_SECONDS = env_int("WELL_KNOWN_MAX_AGE_SECONDS", 300)
