"""The outbound guard (apps/core/outbound.py): URLs read as the HTTP client reads them, and
the address a call connects to, checked against real sockets on this machine."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from apps.core import outbound
from apps.core.outbound import (
    OutboundPolicy,
    OutboundRefused,
    OutboundSession,
    url_check,
    url_check_resolved,
)
from tests.core.listener import CountingListener, counting_listener

STRICT = OutboundPolicy()
LOOPBACK_HTTP = OutboundPolicy(allow_loopback_http=True)
PRIVATE = OutboundPolicy(allow_private_addresses=True)
# A public address (never connected to in these tests: the connection is redirected or
# refused first) that the test resolver hands out for PUBLIC_NAME.
PUBLIC_NAME = "push.public.example"
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    with counting_listener() as running:
        yield running


class _Handler(BaseHTTPRequestHandler):
    location = ""

    def do_GET(self) -> None:
        if self.location:
            self.send_response(302)
            self.send_header("Location", self.location)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Any]:
    """http_server(location=""): a local http server answering 200, or 302 to `location`."""
    servers: list[ThreadingHTTPServer] = []

    def start(location: str = "") -> int:
        handler = type("Handler", (_Handler,), {"location": location})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def resolver(monkeypatch) -> dict[str, list[list[str]]]:
    """A resolver hook: a name in the returned dict resolves, lookup after lookup, to the
    address lists given for it (the last one repeats); every other name as usual."""
    answers: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups = answers[host]
        addresses = lookups.pop(0) if len(lookups) > 1 else lookups[0]
        return [info for address in addresses for info in real(address, port, *args, **kwargs)]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    return answers


# ------------------------------------------------------------------ the URL


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # urlsplit reads a Google host, urllib3 (so requests) 127.0.0.1 / cloud metadata
        ("https://127.0.0.1\\.fcm.googleapis.com/x", "backslashes"),
        ("https://169.254.169.254\\.fcm.googleapis.com/x", "backslashes"),
        ("https://127.0.0.1\t.fcm.googleapis.com/x", "spaces"),
        ("https://fcm.googleapis.com\n.evil.test/x", "spaces"),
        ("https://fcm.googleapis.com@127.0.0.1/x", "credentials"),
        ("https://user:pw@fcm.googleapis.com/x", "credentials"),
        ("https://127%2e0%2e0%2e1/x", "percent-encode"),
        ("https://127.1/x", "IPv4"),
        ("https://0x7f.0.0.1/x", "IPv4"),
        ("https://2130706433/x", "IPv4"),
        ("https://bücher.example/x", "ASCII"),
        ("http://fcm.googleapis.com/x", "https"),
        ("ftp://fcm.googleapis.com/x", "https"),
        ("https:///x", "host"),
        ("https://fcm.googleapis.com:99999/x", "URL"),
    ],
)
def test_ambiguous_or_unsafe_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(OutboundRefused, match=why):
        url_check(url, LOOPBACK_HTTP)


def test_a_clean_url_is_read_as_the_http_client_reads_it() -> None:
    checked = url_check("https://FCM.googleapis.com:8443/fcm/send/abc?x=1", STRICT)
    assert (checked.scheme, checked.host, checked.port) == ("https", "fcm.googleapis.com", 8443)
    assert url_check("https://[2001:db8::1]/x", STRICT).host == "2001:db8::1"


def test_plain_http_only_to_this_machine_and_only_when_allowed() -> None:
    assert url_check("http://localhost:8090/push", LOOPBACK_HTTP).is_plain_http
    assert url_check("http://[::1]:8090/push", LOOPBACK_HTTP).host == "::1"
    with pytest.raises(OutboundRefused, match="https"):
        url_check("http://localhost:8090/push", STRICT)
    with pytest.raises(OutboundRefused, match="https"):
        url_check("http://10.0.0.1/push", LOOPBACK_HTTP)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="does not resolve"):
        url_check_resolved("https://nothing-here.invalid/x", STRICT)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1",  # noqa: S104
        "::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe",
    ],
)  # fmt: skip
def test_non_public_addresses_are_not_public(address: str) -> None:
    import ipaddress

    assert not outbound.address_is_public(ipaddress.ip_address(address))


# ------------------------------------------------------------------ the connection


def test_a_name_resolving_to_loopback_is_refused_before_connecting(listener) -> None:
    # `localhost` passes every check of the URL's text; it resolves to 127.0.0.1
    with OutboundSession(outbound_policy=STRICT) as session:
        with pytest.raises(OutboundRefused, match="not allowed"):
            session.get(f"https://localhost:{listener.port}/x", timeout=2)
    assert listener.connections == 0


def test_the_same_name_connects_when_private_addresses_are_allowed(listener) -> None:
    # the control: with the switch on, the call reaches the listener (which speaks no TLS)
    with OutboundSession(outbound_policy=PRIVATE) as session:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://localhost:{listener.port}/x", timeout=2)
    assert listener.connections == 1


def test_a_name_resolving_elsewhere_when_connecting_is_refused(listener, resolver) -> None:
    # DNS rebinding: public when checked up front, loopback when the call is made
    resolver[PUBLIC_NAME] = [[PUBLIC_ADDRESS], ["127.0.0.1"]]
    url = f"https://{PUBLIC_NAME}:{listener.port}/x"
    url_check_resolved(url, STRICT)
    with OutboundSession(outbound_policy=STRICT) as session:
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            session.get(url, timeout=2)
    assert listener.connections == 0


def test_a_name_with_one_private_address_among_public_ones_is_refused(listener, resolver) -> None:
    resolver[PUBLIC_NAME] = [[PUBLIC_ADDRESS, "127.0.0.1"]]
    with OutboundSession(outbound_policy=STRICT) as session:
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            session.get(f"https://{PUBLIC_NAME}:{listener.port}/x", timeout=2)
    assert listener.connections == 0


def test_the_peer_address_is_checked_after_connecting(listener, resolver, monkeypatch) -> None:
    # The name resolves to a public address, but the socket ends up at 127.0.0.1 (a
    # network path that lands elsewhere): the peer check refuses before a byte is sent.
    resolver[PUBLIC_NAME] = [[PUBLIC_ADDRESS]]
    real_connect = outbound.urllib3_connection.create_connection

    def lands_on_loopback(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        assert address[0] == PUBLIC_ADDRESS  # only the vetted address is dialled
        return real_connect(("127.0.0.1", listener.port), *args, **kwargs)

    monkeypatch.setattr(outbound.urllib3_connection, "create_connection", lands_on_loopback)
    with OutboundSession(outbound_policy=STRICT) as session:
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            session.get(f"https://{PUBLIC_NAME}:{listener.port}/x", timeout=2)
    assert listener.received == b""


def test_each_redirect_hop_is_checked(http_server, listener) -> None:
    # a local service (allowed: plain http to this machine) redirects to an address that
    # is not (https to loopback) or to a URL that is not (plain http elsewhere)
    to_loopback = http_server(location=f"https://localhost:{listener.port}/next")
    to_metadata = http_server(location="http://169.254.169.254/latest/meta-data/")
    with OutboundSession(outbound_policy=LOOPBACK_HTTP) as session:
        assert session.get(f"http://127.0.0.1:{http_server()}/", timeout=2).status_code == 200
        with pytest.raises(OutboundRefused, match="not allowed"):
            session.get(f"http://127.0.0.1:{to_loopback}/", timeout=2)
        with pytest.raises(OutboundRefused, match="https"):
            session.get(f"http://127.0.0.1:{to_metadata}/", timeout=2)
    assert listener.connections == 0


def test_proxies_from_the_environment_are_not_used(http_server, monkeypatch) -> None:
    # requests would send this through the proxy (where nothing listens); the guard must
    # see the address it connects to, so it connects directly
    port = http_server()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with OutboundSession(outbound_policy=LOOPBACK_HTTP) as session:
        assert session.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
