"""Who may drive a holefill server: the Host check, the Origin check, the token and CORS.

A server on ``127.0.0.1`` is reachable by every web page its user opens: a page can make the
browser POST to it, and through DNS rebinding (a name that first resolves to the attacker, then to
127.0.0.1) even read the answers. :class:`SecurityMiddleware` closes that the way Jupyter does:

* **Host check** (every request): the ``Host`` header must be ``localhost``, a loopback address,
  the address the server is bound to (any IP address when it is bound to all of them), or a name
  given with ``--allow-host``; otherwise 403. A rebinding page sends its own name, so it is refused.
* **Origin check** (``POST``, ``PUT``, ``PATCH``, ``DELETE``): a request whose ``Origin`` -- or,
  without one, ``Referer`` -- is not the server's own origin (or a ``--cors-origin``) gets 403.
  Requests with neither (curl, Python) pass: browsers always send one of them on such requests.
* **Token** (when the server is bound to a non-loopback address, unless ``--no-token``): every
  request but the page itself must carry it, as the ``X-Holefill-Token`` header,
  ``Authorization: Bearer TOKEN``, the ``?token=`` query parameter, or the cookie that a request
  with a valid ``?token=`` sets (``HttpOnly``, ``SameSite=Strict``); otherwise 401.
* **CORS** stays off (no ``Access-Control-*`` headers) unless ``--cors-origin`` names origins.

The middleware is pure ASGI, so it sees every request before routing and never buffers bodies.
"""

from __future__ import annotations

import http.cookies
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from holefill.errors import InputError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_HEADER = "X-Holefill-Token"
#: Paths served without the token: the page (it holds no data and has to load to pass the token
#: on) and Swagger UI's JavaScript and CSS.
PUBLIC_PATHS = frozenset({"/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static-offline-docs/",)
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    address = _ip(host)
    return host.lower().rstrip(".") == "localhost" or bool(address and address.is_loopback)


def _hostname(host_header: str) -> str:
    """The name part of a ``Host`` header: ``[::1]:8080`` -> ``::1``, ``Example.COM.`` -> ``example.com``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (a Referer), lowercased; None if it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()


def _check_origin_value(origin: str) -> str:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise InputError(
            f"--cors-origin takes an origin such as http://localhost:3000, not {origin!r}"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_host_name(name: str) -> str:
    host = name.strip().lower().rstrip(".")
    if not host or any(char in host for char in "/@ ") or host == "*":
        raise InputError(f"--allow-host takes a host name such as myhost.local, not {name!r}")
    return _hostname(host) if not host.startswith("[") else host.strip("[]")


@dataclass(frozen=True)
class SecurityConfig:
    """Who may use the server.

    Parameters
    ----------
    bind_host : str
        The address the server listens on; loopback unless the user asked otherwise.
    allow_hosts : tuple of str
        Extra names accepted in the ``Host`` header (``--allow-host``).
    token : str, optional
        The access token every request but the page must carry; None for none.
    cors_origins : tuple of str
        Origins allowed to call the API from other pages (``--cors-origin``); none by default.
    """

    bind_host: str = "127.0.0.1"
    allow_hosts: tuple[str, ...] = ()
    token: str | None = None
    cors_origins: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_hosts", tuple(map(_check_host_name, self.allow_hosts)))
        object.__setattr__(self, "cors_origins", tuple(map(_check_origin_value, self.cors_origins)))
        if self.token is not None and len(self.token) < 16:
            raise InputError("the access token must be at least 16 characters")

    @classmethod
    def for_server(
        cls,
        bind_host: str,
        *,
        allow_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        no_token: bool = False,
    ) -> SecurityConfig:
        """The settings of ``holefill serve --host BIND_HOST``: a fresh random token if exposed."""
        token = None if no_token or is_loopback(bind_host) else secrets.token_urlsafe(24)
        return cls(bind_host, tuple(allow_hosts), token, tuple(cors_origins))

    @property
    def exposed(self) -> bool:
        """Whether other computers can reach the server (it is not bound to a loopback address)."""
        return not is_loopback(self.bind_host)

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request with this ``Host`` header may be served."""
        name = _hostname(host_header)
        if is_loopback(name) or name in self.allow_hosts:
            return True
        bound = self.bind_host.strip("[]").lower()
        if bound in _WILDCARDS:
            return _ip(name) is not None  # rebinding needs a name; an address is no attack
        return name == bound


class SecurityMiddleware:
    """ASGI middleware applying :class:`SecurityConfig` to every HTTP and WebSocket request."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            else:
                await _send_json(send, status, message)
            return
        query_token = _query_token(scope)
        if self.config.token and query_token == self.config.token and scope["type"] == "http":
            send = self._setting_cookie(scope, send)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if not self.config.host_allowed(host):
            return 403, (
                f"Host {host or '(none)'!r} is not allowed; open the page through localhost or "
                "this computer's address, or start holefill serve with --allow-host NAME"
            )
        method = scope.get("method", "GET")
        if method in _STATE_CHANGING or scope["type"] == "websocket":
            origin = self._request_origin(headers)
            own = f"{'https' if scope.get('scheme') in ('https', 'wss') else 'http'}://{host}"
            if origin is not None and origin not in (own.lower(), *self.config.cors_origins):
                return 403, (
                    f"requests from {origin} are not allowed; use the page at {own}/ "
                    "(or start holefill serve with --cors-origin ORIGIN)"
                )
        if self.config.token and method != "OPTIONS" and not self._public(scope["path"]):
            given = self._token(scope, headers).encode("utf-8", "replace")
            if not secrets.compare_digest(given, self.config.token.encode()):
                return 401, (
                    "this server needs its access token: open the address holefill serve "
                    f"printed (with ?token=...), or send the {TOKEN_HEADER} header"
                )
        return None

    @staticmethod
    def _request_origin(headers: dict[str, str]) -> str | None:
        if "origin" in headers:
            return headers["origin"].strip().lower() or "null"
        if "referer" in headers:
            return _origin_of(headers["referer"]) or "null"
        return None

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _cookie_name(self, scope: Scope) -> str:
        server = scope.get("server") or ("", 0)
        return f"holefill-token-{server[1] or 0}"  # cookies ignore ports: one per server

    def _token(self, scope: Scope, headers: dict[str, str]) -> str:
        if TOKEN_HEADER.lower() in headers:
            return headers[TOKEN_HEADER.lower()].strip()
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        query = _query_token(scope)
        if query:
            return query
        cookies = http.cookies.SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except http.cookies.CookieError:
            return ""
        morsel = cookies.get(self._cookie_name(scope))
        return morsel.value if morsel is not None else ""

    def _setting_cookie(self, scope: Scope, send: Send) -> Send:
        cookie = (
            f"{self._cookie_name(scope)}={self.config.token}; Path=/; HttpOnly; SameSite=Strict"
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"set-cookie", cookie.encode())],
                }
            await send(message)

        return send_with_cookie


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, names lowercased; the first of repeated ones."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


def _query_token(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("token", [""]) if "token=" in query else [""]
    return values[0]


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
