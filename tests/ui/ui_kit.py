"""Helpers for the web UI tests: Debian's Chromium through Playwright, admins made by the real
CLI, signing in through the real form, and screenshots for docs/ui.md."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from browser import chromium
from server import Response, SluiceServer, StartServer, clean_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "SluiceServer",
    "StartServer",
    "chromium",
    "cookie_header",
    "create_admin",
    "csrf_token",
    "exchange",
    "new_context",
    "number",
    "shoot",
    "sign_in",
    "sluice_cli",
]

ADMIN_EMAIL = "ada@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
VIEWPORT = {"width": 1280, "height": 860}
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# Screenshots replace the ones in docs/img only when asked (SLUICE_UPDATE_SCREENSHOTS=1), so a
# test run does not rewrite committed images; otherwise they go to a temporary folder.
SHOTS = DOCS_IMG if os.environ.get("SLUICE_UPDATE_SCREENSHOTS") else Path(tempfile.gettempdir())
HTTP_TIMEOUT_S = 30.0


def new_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile (no cookies) at the size the screenshots are taken at."""
    return browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]


def sluice_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `sluice` command on the server's data dir; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--data-dir", str(data_dir)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_admin(data_dir: Path) -> None:
    done = sluice_cli(data_dir, "admin", "create", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert done.returncode == 0, done.stderr


def sign_in(page: Page, base_url: str) -> None:
    """Through the real sign-in form, as a person would."""
    page.goto(f"{base_url}/signin")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)


@contextlib.contextmanager
def signed_in_page(
    browser: Browser, base_url: str, permissions: Sequence[str] = ()
) -> Iterator[Page]:
    """A signed-in page whose script errors and console errors (Content-Security-Policy
    violations included) fail the test when it is closed."""
    context = new_context(browser)
    if permissions:
        context.grant_permissions(list(permissions), origin=base_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and "Failed to load resource" not in m.text  # the 400s of refused forms
            and errors.append(m.text)
        ),
    )
    sign_in(page, base_url)
    yield page
    context.close()
    assert errors == [], errors  # no script error or policy violation on any page


def csrf_token(page: Page) -> str:
    """The CSRF token the current page's forms carry."""
    value = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert value, "the page has no CSRF token"
    return value


def shoot(page: Page, name: str) -> None:
    """A screenshot of the whole page (docs/img/<name>.png when updating the docs)."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def number(text: str) -> int:
    """The integer in a figure as the UI prints it ("1,234" or "1 234")."""
    digits = re.sub(r"[^\d-]", "", text)
    assert digits, f"no number in {text!r}"
    return int(digits)


def exchange(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Response, list[str]]:
    """One raw HTTP request (no redirects followed); the answer and its Set-Cookie lines."""
    conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        res = conn.getresponse()
        data = res.read()
        cookies = [value for name, value in res.getheaders() if name.lower() == "set-cookie"]
        answer = Response(res.status, {k.lower(): v for k, v in res.getheaders()}, data)
        return answer, cookies
    finally:
        conn.close()


def cookie_header(set_cookies: list[str]) -> str:
    """The Cookie header a browser would send back for these Set-Cookie lines."""
    return "; ".join(line.split(";", 1)[0].strip() for line in set_cookies)


def signed_in_cookie(host: str, port: int, data_dir: Path) -> str:
    """An admin session's cookie header, over plain HTTP (no browser)."""
    from urllib.parse import urlencode

    create_admin(data_dir)
    signin, cookies = exchange(host, port, "GET", "/signin")
    token = signin.body.split(b'name="csrf_token" value="')[1].split(b'"')[0].decode()
    fields = urlencode({"csrf_token": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    headers = {"content-type": "application/x-www-form-urlencoded",
               "cookie": cookie_header(cookies)}  # fmt: skip
    answer, session = exchange(host, port, "POST", "/signin", fields.encode(), headers)
    assert answer.status == 303, answer
    return cookie_header(session)
