"""A small but real OpenID provider on loopback, for the SSO tests.

Discovery, a JWKS (RS256 keys made per run, signed with joserfc: a library our
client does not use), an /authorize that approves the configured user at once,
a /token that checks client authentication, the code, redirect_uri and the
PKCE S256 verifier, and /userinfo (for the access token /token issued). Switches
make it misbehave the ways real providers do: another audience, an expired token,
a bad signature, a rotated key, a discovery document naming another issuer or
other endpoints, or simply being down; or behave as a certified provider does by
default, serving the profile and email claims from /userinfo only (OIDC Core 5.4).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


def _rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class Switches:
    audience: str | None = None  # another `aud` than the client id
    expired: bool = False
    bad_signature: bool = False  # signed with a key the JWKS does not hold, under its kid
    nonce: str | None = None  # another nonce than the one asked for
    discovery_issuer: str | None = None  # the discovery document names another issuer
    deny: bool = False  # /authorize answers error=access_denied
    # The ID token carries `sub` only; the other claims come from /userinfo.
    claims_in_userinfo_only: bool = False
    userinfo_claims: dict[str, Any] | None = None  # /userinfo answers these instead
    userinfo_status: int | None = None  # /userinfo answers this error status instead
    discovery_endpoints: dict[str, str] = field(default_factory=dict)  # replaced in discovery


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    used: bool = False


@dataclass
class OpenIDProvider:
    client_id: str = "platform-client"
    client_secret: str = "op-secret-" + secrets.token_hex(8)
    claims: dict[str, Any] = field(default_factory=dict)
    switches: Switches = field(default_factory=Switches)
    requests_seen: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = [_rsa_key("key-1")]
        self.grants: dict[str, Grant] = {}
        self.access_tokens: set[str] = set()
        self.server: ThreadingHTTPServer | None = None
        self.base = ""
        self.lock = threading.Lock()

    # -------------------------------------------------------------- lifecycle
    def start(self) -> OpenIDProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider._handle(self, "GET")

            def do_POST(self) -> None:
                provider._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port no longer answers (connection refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def issuer(self) -> str:
        return self.base

    def rotate(self) -> None:
        """A new signing key under a new kid; only it is published from now on."""
        self.keys = [_rsa_key(f"key-{len(self.keys) + 1}-{secrets.token_hex(2)}")]

    # -------------------------------------------------------------- requests
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        with self.lock:
            self.requests_seen[url.path] = self.requests_seen.get(url.path, 0) + 1
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        else:
            form = {}
        routes = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
        }
        route = routes.get((method, url.path))
        if route is None:
            return self._send(handler, 404, {"error": "not_found"})
        status, body, headers = route(query, form, handler)
        self._send(handler, status, body, headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if body is not None:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _discovery(self, query: dict, form: dict, handler: Any) -> tuple[int, Any, dict]:
        base = self.issuer
        return (
            200,
            {
                "issuer": self.switches.discovery_issuer or base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "userinfo_endpoint": f"{base}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                **self.switches.discovery_endpoints,
            },
            {},
        )

    def _jwks(self, query: dict, form: dict, handler: Any) -> tuple[int, Any, dict]:
        return 200, {"keys": [k.as_dict(private=False) for k in self.keys]}, {}

    def _authorize(self, query: dict, form: dict, handler: Any) -> tuple[int, Any, dict]:
        redirect_uri = query.get("redirect_uri", "")
        ok = (
            query.get("response_type") == "code"
            and query.get("client_id") == self.client_id
            and "openid" in query.get("scope", "").split()
            and query.get("code_challenge_method") == "S256"
            and query.get("code_challenge")
            and query.get("state")
            and query.get("nonce")
            and redirect_uri
        )
        if not ok:
            return 400, {"error": "invalid_request"}, {}
        state = query["state"]
        if self.switches.deny:
            params = {"error": "access_denied", "state": state}
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                nonce=query["nonce"],
            )
            params = {"code": code, "state": state}
        return 302, None, {"Location": f"{redirect_uri}?{urlencode(params)}"}

    def _client_authenticated(self, handler: Any, form: dict) -> bool:
        header = handler.headers.get("Authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            client_id, _, secret = raw.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return unquote(client_id) == self.client_id and unquote(secret) == self.client_secret

    def _token(self, query: dict, form: dict, handler: Any) -> tuple[int, Any, dict]:
        if not self._client_authenticated(handler, form):
            return 401, {"error": "invalid_client"}, {}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}, {}
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used:
            return 400, {"error": "invalid_grant"}, {}
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}, {}
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if not verifier or challenge != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}, {}
        access_token = secrets.token_urlsafe(24)
        self.access_tokens.add(access_token)
        return (
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(nonce=grant.nonce),
            },
            {"Cache-Control": "no-store"},
        )

    def _userinfo(self, query: dict, form: dict, handler: Any) -> tuple[int, Any, dict]:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.access_tokens:
            return 401, {"error": "invalid_token"}, {"WWW-Authenticate": "Bearer"}
        if self.switches.userinfo_status is not None:
            return self.switches.userinfo_status, {"error": "server_error"}, {}
        if self.switches.userinfo_claims is not None:
            return 200, dict(self.switches.userinfo_claims), {}
        return 200, dict(self.claims), {}

    def id_token(self, *, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.switches.audience or self.client_id,
            "iat": now - 7200 if self.switches.expired else now,
            "exp": now - 3600 if self.switches.expired else now + 300,
            "nonce": self.switches.nonce or nonce,
            **(
                {"sub": self.claims["sub"]}
                if self.switches.claims_in_userinfo_only
                else self.claims
            ),
        }
        key = self.keys[-1]
        header = {"alg": "RS256", "kid": key.kid}
        if self.switches.bad_signature:
            return jwt.encode(header, claims, _rsa_key(str(key.kid)))
        return jwt.encode(header, claims, key)
