"""The gateway identifier for bearer tokens, extended with the user's grants.

It wraps `apps.accounts.authentication.bearer_identity` and adds the two grant
keys (apps/rbac/grants.py) to what the rate-limit script reads, so a request
that checks a permission still costs one Redis round trip.
"""

from __future__ import annotations

from django.http import HttpRequest

from apps.accounts.authentication import bearer_identity
from apps.core.gateway import GatewayIdentity, ReadValues
from apps.rbac.grants import gateway_keys


def bearer_identity_with_grants(request: HttpRequest) -> GatewayIdentity | None:
    identity = bearer_identity(request)
    if identity is None or not identity.client.startswith("user:"):
        return identity
    user_id = identity.client.split(":", 1)[1]
    own = len(identity.read_keys)
    inner = identity.complete

    def complete(values: ReadValues) -> None:
        if inner is not None:
            inner(None if values is None else values[:own])
        if values is not None:
            request._rbac_values = values[own : own + 2]  # type: ignore[attr-defined]

    return GatewayIdentity(
        client=identity.client,
        read_keys=(*identity.read_keys, *gateway_keys(user_id)),
        complete=complete,
    )
