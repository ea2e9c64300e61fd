"""Who may read the metrics: the same rule for /metrics and for a worker's port."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from django.conf import settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Verdict:
    status: int  # 200, 401 (no or wrong token) or 403 (address not allowed)
    reason: str = ""


def _address_in(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def metrics_access(*, address: str, authorization: str, proxied: bool) -> Verdict:
    """METRICS_TOKEN (a bearer token) and METRICS_ALLOWED_NETWORKS: each one set must match.
    With neither set, only a direct request from loopback is let in: a request a proxy on
    the same machine forwarded (`proxied`: it carries X-Forwarded-For or Forwarded) comes
    from loopback too, but from anyone."""
    token: str = settings.METRICS_TOKEN
    networks: list[str] = list(settings.METRICS_ALLOWED_NETWORKS)
    if not token and not networks:
        if proxied or not _address_in(address, [str(n) for n in LOOPBACK]):
            return Verdict(403, "set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS")
        return Verdict(200)
    if networks and not _address_in(address, networks):
        return Verdict(403, "address not allowed")
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return Verdict(401, "bearer token required")
    return Verdict(200)
