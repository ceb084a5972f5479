"""What every page shares: the store, settings, templates, and how a page is rendered.

Pages run the store's synchronous calls on worker threads (`Site.run`), never in the event
loop. Reads of the event log itself (newest events, lookups) use a connection of their own,
opened on first use: a slow read there must not hold the lock of the connection the collector
commits events through in this process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import jinja2
import msgspec
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from sluice import __version__
from sluice.collector.peer import Network, forwarded_origin, parse_networks
from sluice.config import Settings
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store
from sluice.ui.guard import Visitor
from sluice.ui.session import SessionKeys
from sluice.ui.snippets import base_url

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
T = TypeVar("T")
FLASH_COOKIE = "sluice_flash"
NONE = "\N{EN DASH}"  # how a table shows "no value"

NAV = (
    ("overview", "/", "Overview"),
    ("sources", "/sources", "Sources"),
    ("destinations", "/destinations", "Destinations"),
    ("lookup", "/lookup", "Event lookup"),
    ("profiles", "/profiles", "Profiles"),
    ("protocols", "/protocols", "Protocols"),
    ("warehouses", "/warehouses", "Warehouses"),
    ("transformations", "/transformations", "Transformations"),
    ("privacy", "/privacy", "Privacy"),
)


def json_script(value: Any) -> Markup:
    """JSON for a `<script type="application/json">`: no "<" may end the element early."""
    return Markup(msgspec.json.encode(value).decode().replace("<", "\\u003c"))


def pretty_json(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def ago(ms: int | None, now_ms: float | None = None) -> str:
    """`5 s ago`, `3 min ago`, `in 20 s`: how people read recency at a glance."""
    if not ms:
        return "never"
    seconds = ((now_ms if now_ms is not None else time.time() * 1000) - ms) / 1000
    return f"in {_span(-seconds)}" if seconds < 0 else f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def number(value: int | float | None) -> str:
    if value is None:
        return NONE
    return f"{value:,}".replace(",", "\u202f")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["ts"] = lambda ms: format_ms(ms) if ms else NONE
    env.filters["ago"] = ago
    env.filters["pretty"] = pretty_json
    env.filters["num"] = number
    env.filters["q"] = lambda s: quote(str(s), safe="")
    env.globals["version"] = __version__  # the footer's, for signed-in admins only
    return env


class Site:
    """The UI's shared state in one process (nothing here must survive between requests)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.keys = SessionKeys(store)
        self.trusted: tuple[Network, ...] = parse_networks(settings.trusted_proxies)
        self.templates = _environment()
        self._log: Store | None = None
        self._log_lock = threading.Lock()

    @property
    def log(self) -> Store:
        """A store connection for reading the event log (see the module docstring)."""
        with self._log_lock:
            if self._log is None:
                from sluice.store.factory import open_store

                self._log = open_store(self.settings)
            return self._log

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        visitor: Visitor = request.state.visitor
        html = self.templates.get_template(template).render(
            request=request,
            visitor=visitor,
            csrf_token=visitor.csrf_token,
            nav=NAV,
            flash=unquote(request.cookies.get(FLASH_COOKIE, "")),
            **context,
        )
        response = HTMLResponse(html, status, headers={"cache-control": "no-store"})
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="lax")
        return response

    def base_url(self, request: Request) -> str:
        """This server as clients reach it (for snippets), decided as the settings endpoint
        decides analytics.js's `apiHost`: the scheme and host a trusted proxy forwards, never
        those of anyone else (a crafted header must not put another host in the snippet)."""
        headers: dict[bytes, bytes] = {}
        for name, value in request.scope.get("headers", []):
            headers.setdefault(name, value)
        peer = request.client.host if request.client else None
        scheme, host = forwarded_origin(peer, headers, self.trusted)
        return base_url(
            self.settings.public_url,
            scheme or request.url.scheme,
            host or request.headers.get("host"),
        )


def redirect(path: str, flash: str = "") -> RedirectResponse:
    """303 to `path` (after a POST), with a one-line message for the next page to show.

    The message rides in a short-lived cookie, not the URL: a link cannot make a page say
    something Sluice did not.
    """
    response = RedirectResponse(path, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash, safe=""), max_age=60, httponly=True, samesite="lax"
        )
    return response


def safe_next(target: str | None) -> str:
    """Only paths of this site: never `//host` or `https://...` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
