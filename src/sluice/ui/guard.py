"""The UI's gate, as ASGI middleware: who is signed in, CSRF on every POST, security headers.

Middleware rather than a check in each page, so that no route can forget it: every request
that is not for the sign-in or first-run screens (or static files) needs a valid session, and
every POST, whatever its route, must carry the CSRF token of its browser (form field
`csrf_token` or header `X-CSRF-Token`) or is refused with 403 before any page code runs. The
form body read for the check is handed on to the page unchanged.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import cookie_parser

from sluice.collector.peer import Network, forwarded_origin, parse_networks
from sluice.config import Settings
from sluice.store.base import EventStore
from sluice.ui.accounts import find_admin, has_admin, password_tag
from sluice.ui.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionKeys,
    new_nonce,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PREFIXES = ("/signin", "/setup", "/static/")
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_FORM_BYTES = 1024 * 1024
# Headers by which proxies, load balancers and CDNs pass the client on. Any of them makes a
# request "not local"; so does any name containing "forwarded" or ending in "-ip"/"clientip"
# (`is_forwarding_header`), to cover products not listed here. A false "not local" costs an
# admin `sluice admin create`; a false "local" would hand the first-run screen to a stranger.
FORWARDING_HEADERS = frozenset(
    {
        b"forwarded", b"forwarded-for", b"x-forwarded", b"x-forwarded-for", b"x-forwarded-host",
        b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-server", b"x-forwarded-prefix",
        b"x-original-forwarded-for", b"x-real-ip", b"x-client-ip", b"client-ip",
        b"cf-connecting-ip", b"cf-connecting-ipv6", b"true-client-ip", b"fastly-client-ip",
        b"x-cluster-client-ip", b"x-azure-clientip", b"x-appengine-user-ip", b"x-originating-ip",
        b"x-remote-ip", b"x-remote-addr", b"x-envoy-external-address", b"x-original-host", b"via",
    }
)  # fmt: skip
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        b" connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True, slots=True)
class Visitor:
    """What the gate learnt about a request, for the pages (`request.state.visitor`)."""

    session: Session | None
    csrf_token: str
    secure: bool  # https, directly or through a trusted proxy: cookies get `Secure`
    local: bool  # from this machine, not through a proxy (the first-run screen's condition)

    @property
    def email(self) -> str | None:
        return self.session.email if self.session else None


def is_forwarding_header(name: bytes) -> bool:
    """Whether a (lower-case) header name is one a proxy adds to pass the client on."""
    return (
        name in FORWARDING_HEADERS
        or b"forwarded" in name
        or name.endswith((b"-ip", b"-ipv6", b"clientip"))
    )


def is_local(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A loopback peer that did not come through a proxy.

    A reverse proxy on the same machine makes every visitor look local; such requests carry
    forwarding headers, and are then not considered local.
    """
    client = scope.get("client")
    if not client or any(is_forwarding_header(name) for name in headers):
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    # Starlette's parser, as browsers parse: one odd cookie (another app's) does not hide ours.
    raw = headers.get(b"cookie")
    return cookie_parser(raw.decode("latin-1")) if raw else {}


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


class Guard:
    """Wraps the UI app; see the module docstring."""

    def __init__(self, app: ASGIApp, store: EventStore, keys: SessionKeys, settings: Settings):
        self.app = app
        self.store = store
        self.keys = keys
        self._trusted: tuple[Network, ...] = parse_networks(settings.trusted_proxies)

    def _secure(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        scheme, _host = forwarded_origin(client[0] if client else None, headers, self._trusted)
        return scheme == "https"

    def _session(self, cookies: dict[str, str]) -> Session | None:
        session = self.keys.verify(cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        admin = find_admin(self.store, session.email)
        if admin is None or password_tag(admin) != session.tag:
            return None  # removed, or the password changed since
        return session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name, value)
        cookies = _cookies(headers)
        path: str = scope.get("path", "/")
        if path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        public = path.startswith(PUBLIC_PREFIXES)
        secure = self._secure(scope, headers)
        set_cookies: list[bytes] = []
        session = await asyncio.to_thread(self._session, cookies)
        if session is not None:
            nonce = session.nonce
        else:
            nonce = cookies.get(CSRF_COOKIE) or ""
            if len(nonce) < 16:
                nonce = new_nonce()
                set_cookies.append(cookie_header(CSRF_COOKIE, nonce, secure=secure, max_age=None))
        token = await asyncio.to_thread(self.keys.csrf_token, nonce)
        visitor = Visitor(session, token, secure, is_local(scope, headers))
        scope.setdefault("state", {})["visitor"] = visitor

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"set-cookie", c) for c in set_cookies]
                message["headers"] = [*message.get("headers", []), *extra, *SECURITY_HEADERS]
            await send(message)

        method = scope.get("method", "GET")
        if method not in SAFE_METHODS:
            body, disconnected = await self._read_body(receive)
            if body is None:
                await _plain(send_with_headers, 413, "The form is too large.")
                return
            if not self._csrf_ok(nonce, headers, body):
                await _plain(
                    send_with_headers,
                    403,
                    "Forbidden: the form's security token is missing or wrong."
                    " Reload the page and try again.",
                )
                return
            receive = _replay(body, disconnected, receive)
        if session is None and not public:
            if method in SAFE_METHODS and not path.endswith("/stream"):
                target = "/signin"
                if visitor.local and not await asyncio.to_thread(has_admin, self.store):
                    target = "/setup"
                elif path != "/":
                    query = scope.get("query_string", b"").decode("latin-1")
                    target += "?next=" + quote(path + (f"?{query}" if query else ""), safe="")
                await _redirect(send_with_headers, target)
            else:
                await _plain(send_with_headers, 401, "Sign in first.")
            return
        await self.app(scope, receive, send_with_headers)

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, bool]:
        """The whole body (None when over the limit), and whether the client is gone."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                return None, False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    def _csrf_ok(self, nonce: str, headers: dict[bytes, bytes], body: bytes) -> bool:
        token = headers.get(CSRF_HEADER.encode())
        if token is not None:
            return self.keys.csrf_ok(nonce, token.decode("latin-1"))
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/x-www-form-urlencoded":
            return False
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD, [])
        return len(values) == 1 and self.keys.csrf_ok(nonce, values[0])


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    """A `receive` that gives the page the body the gate already read."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnected:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"content-length", b"0"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
