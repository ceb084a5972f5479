"""Debian's Chromium through Playwright, launched the way that works with no network."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from server import WRITE_KEY, SluiceServer, require, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces: any host but this machine fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium() -> Iterator[Browser]:
    """Headless Chromium for a module's tests (Playwright's own builds are never downloaded).

    Each launch gets a fresh temporary profile; tests make a new context each for cookies.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed (uv sync)")
        raise
    require(CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class _Page:
    """Serves one HTML page from another origin than Sluice (another port)."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def track_from_snippet_page(
    server: SluiceServer, event: str
) -> tuple[list[str], list[tuple[str, int]]]:
    """In Chromium, open a page (another origin) holding only the UI's snippet with analytics.js
    served by Sluice, which tracks `event`; once Sluice stored it, return the URLs the page asked
    for and the (URL, status) answers. Fails if the page asked any host but the two."""
    from sluice.ui.snippets import snippets

    snippet = snippets(server.base_url, WRITE_KEY, self_hosted=True).analytics_js
    page = _Page(
        f"<!doctype html><html><head>{snippet}</head><body><script>"
        f"analytics.track({json.dumps(event)}, {{plan: 'pro'}})</script></body></html>"
    )
    seq = server.store.last_seq()
    asked: list[str] = []
    answers: list[tuple[str, int]] = []
    try:
        launched = chromium()
        browser = next(launched)
        context = browser.new_context()
        tab = context.new_page()
        tab.on("request", lambda r: asked.append(r.url))
        tab.on("response", lambda r: answers.append((r.url, r.status)))
        tab.goto(f"{page.origin}/shop.html")

        def tracked() -> bool:
            tab.wait_for_timeout(100)
            return any(e.event == event for e in server.events_after(seq))

        try:
            wait_for(tracked, 20, what=f"the page's {event!r} at Sluice")
        except AssertionError:
            raise AssertionError(f"requests: {asked}") from None
        context.close()
        launched.close()
    finally:
        page.close()
    hosts = {u.split("/")[2] for u in asked if u.startswith("http")}
    assert hosts <= {page.origin.split("/")[2], server.base_url.split("/")[2]}, hosts
    return asked, answers
