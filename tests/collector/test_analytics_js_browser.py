"""Segment's analytics.js (analytics-next, from npm) in a real headless Chromium against Sluice.

A local server (another origin than Sluice: another port) serves `tests/js/page.html` and
analytics-next's builds from node_modules. The page loads analytics.js either as npm users do
(the UMD build's `AnalyticsBrowser.load({writeKey, cdnURL: <Sluice>})`) or as most sites do
(Segment's snippet, with a self-hosted script and `analytics._cdn = <Sluice>`). It then fetches
`<Sluice>/v1/projects/<key>/settings` and posts each call, as `text/plain` JSON with a Basic
`Authorization` header (so after a CORS preflight), to the `apiHost` + `protocol` Sluice returned:
`/v1/i`, `/v1/t`, `/v1/p` one by one, or `/v1/b` with the batching delivery strategy. Nothing on
the page may reach past this machine.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec
import pytest

from browser import chromium
from server import WRITE_KEY, SluiceServer, basic, require, wait_for
from sluice.spec.timestamps import parse_ms

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

JS_DIR = Path(__file__).resolve().parent.parent / "js"
PAGE = JS_DIR / "page.html"
PACKAGE = JS_DIR / "node_modules" / "@segment" / "analytics-next"
BUNDLES = PACKAGE / "dist" / "umd"
ARRIVAL_TIMEOUT_S = 15.0
PAGE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require((BUNDLES / "index.js").is_file(), "analytics-next is missing: npm ci --prefix tests/js")
    yield from chromium()


class _PageHandler(http.server.BaseHTTPRequestHandler):
    """`/page.html` and analytics-next's builds: the UMD build's files under
    `/analytics-next/bundles/`, and the standalone build (Segment's CDN serves it as
    `analytics.min.js`) at `/analytics.js/v1/<key>/analytics.min.js`."""

    served: list[str]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.served.append(path)
        file: Path | None = None
        if path == "/page.html":
            file = PAGE
        elif path.startswith("/analytics.js/v1/") and path.endswith("/analytics.min.js"):
            file = BUNDLES / "standalone.js"
        elif path.startswith("/analytics-next/bundles/"):
            name = path.rsplit("/", 1)[1]
            if name in {p.name for p in BUNDLES.iterdir() if p.is_file()}:
                file = BUNDLES / name
        if file is None:
            self.send_error(404)
            return
        body = file.read_bytes()
        content_type = "text/html" if file.suffix == ".html" else "text/javascript"
        self.send_response(200)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class PageServer:
    origin: str
    served: list[str]


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    served: list[str] = []
    handler = type("Handler", (_PageHandler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield PageServer(f"http://127.0.0.1:{httpd.server_address[1]}", served)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


Exchange = tuple[str, str, int, dict[str, str], dict[str, str]]


@dataclass
class Traffic:
    """What the page asked for, as the browser saw it."""

    urls: list[str] = field(default_factory=list)
    # (method, url, status, request headers, response headers), once answered.
    exchanges: list[Exchange] = field(default_factory=list)
    # CORS preflights (Playwright's own events leave them out; the DevTools protocol has them).
    preflights: list[Exchange] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def to(self, base_url: str, method: str) -> list[Exchange]:
        return [e for e in self.exchanges if e[0] == method and e[1].startswith(base_url)]


@dataclass
class Visit:
    page: Page
    traffic: Traffic

    def evaluate(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def wait_until(self, check: Callable[[], bool], what: str) -> None:
        """Poll `check` while letting the browser's events through (they arrive during waits)."""
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.traffic}")
            self.page.wait_for_timeout(50)


@contextlib.contextmanager
def visit(browser: Browser, url: str) -> Iterator[Visit]:
    """Open `url` in a fresh browser context (no cookies or storage from other tests)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        traffic = Traffic()
        page.on("request", lambda r: traffic.urls.append(r.url))
        page.on(
            "response",
            lambda r: traffic.exchanges.append(
                (r.request.method, r.url, r.status, r.request.headers, r.headers)
            ),
        )
        page.on("requestfailed", lambda r: traffic.failed.append(f"{r.method} {r.url} {r.failure}"))
        page.on("console", lambda m: m.type == "error" and traffic.console_errors.append(m.text))
        cdp = context.new_cdp_session(page)
        cdp.on("Network.responseReceived", lambda e: _preflight(traffic, e))
        cdp.send("Network.enable")
        page.goto(url, timeout=PAGE_TIMEOUT_MS)
        yield Visit(page, traffic)
    finally:
        context.close()


def _preflight(traffic: Traffic, event: dict[str, Any]) -> None:
    if event.get("type") == "Preflight":
        res = event["response"]
        headers = {k.lower(): v for k, v in res["headers"].items()}
        request_headers = {k.lower(): v for k, v in (res.get("requestHeaders") or {}).items()}
        traffic.preflights.append(("OPTIONS", res["url"], res["status"], request_headers, headers))


def page_url(origin: str, sluice: SluiceServer, run: str, loader: str, strategy: str) -> str:
    query = {"sluice": sluice.base_url, "writeKey": WRITE_KEY, "run": run}
    query.update(loader=loader, strategy=strategy)
    return f"{origin}/page.html?{urlencode(query)}"


def arrived(sluice: SluiceServer, seq: int, user_id: str, count: int) -> list[dict[str, Any]]:
    """The `count` events of `user_id` once all are stored (polled with a deadline)."""

    def check() -> list[dict[str, Any]] | None:
        found = [p for p in sluice.payloads_after(seq) if p.get("userId") == user_id]
        return found if len(found) >= count else None

    return wait_for(check, timeout=ARRIVAL_TIMEOUT_S, what=f"{count} events of {user_id}")


SCRIPTS = {
    "npm": "/analytics-next/bundles/index.js",
    "snippet": f"/analytics.js/v1/{WRITE_KEY}/analytics.min.js",
}


@pytest.mark.parametrize(
    ("loader", "strategy", "ingest_paths"),
    [
        ("npm", "standard", ["/v1/i", "/v1/t", "/v1/p"]),
        ("npm", "batching", ["/v1/b"]),
        ("snippet", "standard", ["/v1/i", "/v1/t", "/v1/p"]),
        ("snippet", "batching", ["/v1/b"]),
    ],
    ids=["npm-standard", "npm-batching", "snippet-standard", "snippet-batching"],
)
def test_analytics_js_delivers_through_sluice(
    browser: Browser,
    page_server: PageServer,
    sluice_server: SluiceServer,
    loader: str,
    strategy: str,
    ingest_paths: list[str],
) -> None:
    sluice = sluice_server
    run = f"ajs-{loader}-{strategy}-{uuid.uuid4()}"
    user_id = f"{run}-user"
    seq = sluice.store.last_seq()
    url = page_url(page_server.origin, sluice, run, loader, strategy)

    with visit(browser, url) as page:
        result = page.evaluate("window.sluiceTest")
        stored = arrived(sluice, seq, user_id, 3)
        traffic = page.traffic
        page.wait_until(
            lambda: (
                len(traffic.to(sluice.base_url, "POST")) >= len(ingest_paths)
                and len(traffic.preflights) >= len(ingest_paths)
            ),
            "the POSTs' responses",
        )
        errors = page.evaluate("window.sluiceErrors")

    # The browser: settings from Sluice, then the ingest POSTs, each after its CORS preflight,
    # all answered 200; nothing but this machine was ever asked for anything.
    assert errors == []
    assert traffic.failed == []
    assert traffic.console_errors == []
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in traffic.urls), traffic.urls
    assert [(u, s) for _, u, s, *_ in traffic.exchanges if s != 200] == []
    assert SCRIPTS[loader] in page_server.served
    settings = f"{sluice.base_url}/v1/projects/{WRITE_KEY}/settings"
    assert [(u, s) for _, u, s, _, _ in traffic.to(sluice.base_url, "GET")] == [(settings, 200)]
    posts = traffic.to(sluice.base_url, "POST")
    assert sorted(urlsplit(u).path for _, u, *_ in posts) == sorted(ingest_paths)
    for _, post_url, status, request_headers, response_headers in posts:
        assert status == 200, post_url
        assert request_headers["content-type"] == "text/plain", post_url
        assert request_headers["authorization"] == basic(WRITE_KEY), post_url
        assert response_headers["access-control-allow-origin"] == page_server.origin, post_url
    # The Authorization header is what makes the browser ask first (CORS preflight, per URL).
    assert sorted(u for _, u, *_ in traffic.preflights) == sorted(u for _, u, *_ in posts)
    for _, preflight_url, status, _, headers in traffic.preflights:
        assert 200 <= status < 300, preflight_url
        assert headers["access-control-allow-origin"] == page_server.origin
        assert "POST" in headers["access-control-allow-methods"]
        assert "authorization" in headers["access-control-allow-headers"].lower()

    # Sluice: the events Segment would have stored, with the page and the browser's IP.
    if result["sent"] is not None:  # the npm build tells the messageIds it sent
        assert [s["type"] for s in result["sent"]] == ["identify", "track", "page"], result
        assert not any(s["failed"] for s in result["sent"]), result
        assert {p["messageId"] for p in stored} == {s["messageId"] for s in result["sent"]}
    assert sorted(p["type"] for p in stored) == ["identify", "page", "track"]
    version = msgspec.json.decode((PACKAGE / "package.json").read_bytes())["version"]
    for payload in stored:
        context = payload["context"]
        assert context["library"] == {"name": "analytics.js", "version": f"next-{version}"}
        assert context["ip"] == "127.0.0.1"
        assert context["page"]["url"] == url
        assert context["page"]["path"] == "/page.html"
        assert context["page"]["title"] == "Sluice test page"
        assert "HeadlessChrome" in context["userAgent"]
        assert payload["messageId"].startswith("ajs-next-")
        assert payload["anonymousId"]
        assert payload["_metadata"]["bundled"] == ["Segment.io"]
        assert payload["_metadata"]["unbundled"] == []
        assert "writeKey" not in payload
        for name in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert payload[name].endswith("Z"), (name, payload[name])
            assert parse_ms(payload[name]) is not None, (name, payload[name])
    by_type = {p["type"]: p for p in stored}
    assert by_type["identify"]["traits"] == {"email": "ada@example.com", "plan": "pro"}
    assert by_type["track"]["event"] == "Signed Up"
    assert by_type["track"]["properties"] == {"run": run, "plan": "pro", "seats": 3}
    assert (by_type["page"]["category"], by_type["page"]["name"]) == ("Docs", "Pricing")
    assert by_type["page"]["properties"]["run"] == run
    assert by_type["page"]["properties"]["path"] == "/page.html"
