"""The gateway identifier for bearer tokens, extended with the user's grants.

It wraps `apps.accounts.authentication.bearer_identity` and adds the two grant keys
(apps/rbac/grants.py) to what the rate-limit script reads, so a request that checks a
permission still costs one Redis round trip.
"""

from __future__ import annotations

from dataclasses import replace

from django.http import HttpRequest

from apps.accounts.authentication import bearer_identity
from apps.core.gateway import GatewayIdentity
from apps.rbac.grants import gateway_keys


def bearer_identity_with_grants(request: HttpRequest) -> GatewayIdentity | None:
    identity = bearer_identity(request)
    if identity is None or not identity.client.startswith("user:"):
        return identity
    user_id = identity.client.split(":", 1)[1]
    return replace(identity, read_keys=(*identity.read_keys, *gateway_keys(user_id)))
