"""The API gateway: who a request is and whether it is within its rate limit, in one Redis
round trip, recorded once on the request.

- `identity`: who the request counts as. An identifier (settings.GATEWAY_IDENTIFIERS) looks at
  the request without I/O (say, checks a bearer token's signature) and names the rate-limit
  bucket, the Redis keys it wants read (say, the token's revocation state) and what it decoded.
- `middleware.GatewayMiddleware`: counts the request (apps/core/ratelimit.py, one Lua call that
  also reads those keys), answers 429 over the limit, and puts one `GatewayState` on the request.
- `state`: the `GatewayState` and its typed accessors. Authentication (apps/accounts/
  authentication.py) and the grants (apps/rbac/grants.py) read from it; the database stays
  their source of truth when Redis could not be reached.
"""

from apps.core.gateway.identity import GatewayIdentity, identify
from apps.core.gateway.state import GatewayState, gateway_state, redis_values

__all__ = ["GatewayIdentity", "GatewayState", "gateway_state", "identify", "redis_values"]
