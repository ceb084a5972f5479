"""The web UI's footer shows the running version to signed-in admins (over real HTTP against
`sluice serve`), and to no one else: an exposed sign-in page need not tell which release to
look up vulnerabilities for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlencode

import pytest
from ui_kit import ADMIN_EMAIL, ADMIN_PASSWORD, StartServer, cookie_header, create_admin, exchange

from server import SluiceServer
from sluice.ui.session import SESSION_COOKIE

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
VERSION: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
FOOTER = re.compile(rb"<footer[^>]*>\s*Sluice ([^<\s]+)\s*</footer>")
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    server = start_module_server({"SLUICE_WORKERS": "1"})
    create_admin(server.data_dir)
    return server


def signed_in_cookie(server: SluiceServer) -> str:
    """A session cookie, through the real sign-in form."""
    page, cookies = exchange("127.0.0.1", server.port, "GET", "/signin")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.body)
    assert token, page.body[:500]
    fields = {"csrf_token": token.group(1).decode(), "email": ADMIN_EMAIL}
    fields["password"] = ADMIN_PASSWORD
    body = urlencode(fields).encode()
    headers = {**FORM, "cookie": cookie_header(cookies)}
    answer, session = exchange("127.0.0.1", server.port, "POST", "/signin", body, headers)
    assert answer.status == 303, answer.body
    return cookie_header([c for c in session if c.startswith(SESSION_COOKIE)])


@pytest.mark.parametrize(
    "path", ["/", "/sources", "/destinations", "/lookup", "/warehouses", "/privacy", "/privacy/new"]
)
def test_every_page_shows_the_version_to_a_signed_in_admin(server: SluiceServer, path: str) -> None:
    cookie = signed_in_cookie(server)
    page, _ = exchange("127.0.0.1", server.port, "GET", path, headers={"cookie": cookie})
    assert page.status == 200, page.body[:300]
    assert FOOTER.findall(page.body) == [VERSION.encode()]


def test_a_page_not_found_shows_it_too(server: SluiceServer) -> None:
    cookie = signed_in_cookie(server)
    page, _ = exchange("127.0.0.1", server.port, "GET", "/sources/nope", headers={"cookie": cookie})
    assert page.status == 404
    assert FOOTER.findall(page.body) == [VERSION.encode()]


def test_the_sign_in_page_does_not_show_it(server: SluiceServer) -> None:
    page, _ = exchange("127.0.0.1", server.port, "GET", "/signin")
    assert page.status == 200
    assert b"<footer" not in page.body
    assert VERSION.encode() not in page.body
