"""The one way out: every outbound HTTP call (notification providers, push services,
identity providers, webhooks later) goes through a session made here.

Two checks, because a check of the URL's text alone can be walked around:

1. The URL is read by the parser the HTTP client itself uses (urllib3's `parse_url`,
   which requests uses to decide where to connect) and by the standard library's
   (`urlsplit`, which other code reads the same URL with), and refused unless both
   read the same scheme, host and port. Backslashes, spaces, control and non-ASCII
   characters, user info, percent-escapes in the host and IPv4 addresses in
   shorthand (`127.1`, `0x7f.1`, `2130706433`) are refused outright: they are where
   parsers disagree (`https://127.0.0.1\\.fcm.googleapis.com/` is a Google host to
   `urlsplit` and 127.0.0.1 to urllib3). Only https, or plain http to this machine
   (`localhost`, 127.0.0.1, ::1) where the policy allows it for development.
2. The connection: the host name is resolved once, every address it resolves to must
   be allowed (public, unless the policy allows private ones), the socket connects to
   those vetted addresses only (no second lookup for a rebinding DNS server to answer
   differently) while TLS still checks the certificate for the name, and the peer
   address of the connected socket is checked again. A name that does not resolve is
   refused.

Each redirect hop goes through the same adapter and so through both checks.
Proxies from the environment (HTTPS_PROXY...) are not used: the guard must see the
address it connects to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import connection as urllib3_connection
from urllib3.util import parse_url

from apps.core.net import is_ip_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Redirects followed per call; each hop is checked like the first request.
MAX_REDIRECTS = 3

_HOST_NAME = re.compile(
    r"^(?=.{1,253}\.?$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$"
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class OutboundPolicy:
    """What one kind of outbound call may reach, beyond https to public addresses.

    `allow_loopback_http`: plain http to localhost/127.0.0.1/::1 (a service run on
    this machine in development or tests). `allow_private_addresses`: https to
    loopback, private, link-local or other non-public addresses (a service on the
    operator's own network)."""

    allow_loopback_http: bool = False
    allow_private_addresses: bool = False


class OutboundRefused(Exception):
    """The URL or the address it leads to is not allowed. `str()` says why in words a
    client may see; it names at most the host, never the path or query (which can
    carry tokens)."""


@dataclass(frozen=True)
class OutboundUrl:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int

    @property
    def is_plain_http(self) -> bool:
        return self.scheme == "http"


# ------------------------------------------------------------------ the URL


def url_check(url: str, policy: OutboundPolicy) -> OutboundUrl:
    """The URL's scheme, host and port as the HTTP client reads them; OutboundRefused
    if it is ambiguous or not allowed by `policy`. Resolves nothing."""
    if any(ord(char) <= 0x20 or ord(char) >= 0x7F or char == "\\" for char in url):
        raise OutboundRefused("Must be a URL of printable ASCII, without spaces or backslashes.")
    try:
        parsed = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except (LocationParseError, ValueError):
        raise OutboundRefused("Must be a URL.") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https") or scheme != split.scheme.lower():
        raise OutboundRefused("Must be an https URL.")
    if parsed.auth is not None or "@" in split.netloc:
        raise OutboundRefused("Must not carry credentials.")
    if "%" in split.netloc:
        raise OutboundRefused("Must not percent-encode the host.")
    host = (parsed.host or "").strip("[]").lower()
    if not host:
        raise OutboundRefused("Must name a host.")
    if host != (split.hostname or "") or parsed.port != split_port:
        raise OutboundRefused("Is read differently by different URL parsers.")
    if not is_ip_address(host):
        if not _HOST_NAME.match(host):
            raise OutboundRefused("Must name a valid host.")
        if _is_ipv4_shorthand(host):
            raise OutboundRefused("Must write an IPv4 address as four decimal numbers.")
    if scheme == "http" and not (policy.allow_loopback_http and host in LOOPBACK_NAMES):
        raise OutboundRefused("Must be an https URL.")
    return OutboundUrl(
        scheme=scheme, host=host, port=parsed.port or (443 if scheme == "https" else 80)
    )


def url_check_resolved(url: str, policy: OutboundPolicy) -> OutboundUrl:
    """`url_check`, and the host must resolve to addresses `policy` allows. For checking a
    configured URL up front; the connection is checked again when it is made."""
    checked = url_check(url, policy)
    addresses = _resolve(checked.host, checked.port)
    for address in addresses:
        _address_check(address, checked.host, policy, plain_http=checked.is_plain_http)
    return checked


def _is_ipv4_shorthand(host: str) -> bool:
    # What inet_aton (and so getaddrinfo) takes as an address although it is not
    # written as one: 127.1, 0x7f.0.0.1, 017700000001, 2130706433.
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ the address


def address_is_public(address: IPAddress) -> bool:
    """Globally routable unicast, also for the IPv4 address an IPv6 one carries
    (IPv4-mapped, 6to4, Teredo, NAT64)."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address | None] = [address.ipv4_mapped, address.sixtofour]
        embedded.extend(address.teredo or ())
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(inner is None or address_is_public(inner) for inner in embedded)
    return True


def address_allowed(address: IPAddress, policy: OutboundPolicy, *, plain_http: bool) -> bool:
    if plain_http:
        return policy.allow_loopback_http and address.is_loopback
    return policy.allow_private_addresses or address_is_public(address)


def _address_check(
    address: IPAddress, host: str, policy: OutboundPolicy, *, plain_http: bool
) -> None:
    if not address_allowed(address, policy, plain_http=plain_http):
        raise OutboundRefused(f"{host} leads to an address that is not allowed ({address}).")


def _ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(
            host, port, urllib3_connection.allowed_gai_family(), socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused(f"{host} does not resolve.") from None
    addresses = list(dict.fromkeys(_ip(str(info[4][0])) for info in infos))
    if not addresses:
        raise OutboundRefused(f"{host} does not resolve.")
    return addresses


# ------------------------------------------------------------------ the connection


class _GuardedConnectionMixin:
    """Replaces urllib3's `_new_conn`: resolve once, vet every address, connect to a
    vetted one, check the peer. TLS (HTTPSConnection.connect) wraps the socket this
    returns with the URL's host name for SNI and certificate checks."""

    def __init__(self, *args: Any, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        self.outbound_policy = outbound_policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn = cast(HTTPConnection, self)
        plain_http = not isinstance(self, HTTPSConnection)
        host = conn.host.strip("[]")
        try:
            infos = socket.getaddrinfo(
                host, conn.port, urllib3_connection.allowed_gai_family(), socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        targets = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for target in targets:
            _address_check(_ip(target), host, self.outbound_policy, plain_http=plain_http)
        error: Exception = NewConnectionError(conn, f"{host} resolves to no address")
        for target in targets:
            try:
                sock = urllib3_connection.create_connection(
                    (target, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(
                    conn, f"Connection to {host} timed out. (connect timeout={conn.timeout})"
                )
                error.__cause__ = exc
                continue
            except OSError as exc:
                error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
                continue
            try:
                peer = _ip(str(sock.getpeername()[0]))
                _address_check(peer, host, self.outbound_policy, plain_http=plain_http)
            except BaseException:
                sock.close()
                raise
            sys.audit("http.client.connect", self, conn.host, conn.port)  # as urllib3 does
            return sock
        raise error


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outbound_policy = outbound_policy
        self.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        # The pool hands keyword arguments it does not know on to its connections.
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["outbound_policy"] = self.outbound_policy
        return super()._new_pool(scheme, host, port, context)


class OutboundAdapter(HTTPAdapter):
    """A requests transport that checks every request's URL (so every redirect hop)
    and connects through the guarded connections above, never through a proxy."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        self.policy = policy  # read by init_poolmanager, which the base __init__ calls
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager = _GuardedPoolManager(
            self.policy, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        url_check(request.url or "", self.policy)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert)


class OutboundSessionMixin:
    """Makes a requests session (or a subclass such as authlib's OAuth2Session) send
    through the guard: the URL as given is checked before requests normalizes it (a
    backslash would become %5C), and every request, redirects included, goes through
    `OutboundAdapter`."""

    def __init__(self, *args: Any, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbound_policy = outbound_policy
        adapter = OutboundAdapter(outbound_policy)
        session: Any = self
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.max_redirects = MAX_REDIRECTS

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        url_check(url.decode() if isinstance(url, bytes) else url, self.outbound_policy)
        return super().request(method, url, *args, **kwargs)  # type: ignore[misc]


class OutboundSession(OutboundSessionMixin, requests.Session):
    """A requests session for outbound calls under `outbound_policy` (use it as a
    context manager, or close it)."""
