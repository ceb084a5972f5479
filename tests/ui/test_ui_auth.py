"""Signing in to the web UI of a real `sluice serve`: admins made by the CLI, the first-run
screen (this machine only), sessions in signed cookies, and CSRF tokens on every POST."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest
from ui_kit import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    StartServer,
    chromium,
    cookie_header,
    create_admin,
    csrf_token,
    exchange,
    new_context,
    shoot,
    sign_in,
    sluice_cli,
)

from server import SluiceServer, require
from sluice.store.sqlite import SqliteStore
from sluice.ui.accounts import find_admin, password_tag
from sluice.ui.session import SESSION_COOKIE, SESSION_TTL_S, SessionKeys

if TYPE_CHECKING:
    from playwright.sync_api import Browser

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    """Two HTTP workers (a session must work whichever answers), proxies trusted on loopback."""
    server = start_module_server({"SLUICE_WORKERS": "2", "SLUICE_TRUSTED_PROXIES": "127.0.0.1"})
    create_admin(server.data_dir)
    return server


def page_token(body: bytes) -> str:
    match = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert match, body[:500]
    return match.group(1).decode()


def test_sign_in_with_an_admin_made_by_the_cli_then_sign_out(
    browser: Browser, server: SluiceServer
) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server.base_url}/sources")
    # Not signed in: the sign-in form, which brings the visitor back where they wanted to go.
    assert page.url == f"{server.base_url}/signin?next=%2Fsources"
    shoot(page, "signin")

    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", "not the password")
    with page.expect_response(f"{server.base_url}/signin") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 400
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    assert page.input_value("input[name=email]") == ADMIN_EMAIL

    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.base_url}/sources")
    assert page.locator(".who").inner_text() == ADMIN_EMAIL
    (session,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain http here; see the https test below
    assert 0 < session["expires"] - time.time() <= SESSION_TTL_S

    page.click("text=Sign out")
    page.wait_for_url(f"{server.base_url}/signin")
    page.goto(f"{server.base_url}/")
    assert page.url == f"{server.base_url}/signin"
    assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    context.close()


def test_first_run_screen_creates_the_first_admin_from_this_machine(
    browser: Browser, start_server: StartServer
) -> None:
    server = start_server()
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server.base_url}/")
    assert page.url == f"{server.base_url}/setup"
    shoot(page, "first-run")

    page.fill("input[name=email]", "grace@example.com")
    page.fill("input[name=password]", "a long password")
    page.fill("input[name=confirm]", "another password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "The two passwords differ."

    page.fill("input[name=password]", "a long password")
    page.fill("input[name=confirm]", "a long password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.base_url}/")
    assert page.locator(".who").inner_text() == "grace@example.com"
    assert sluice_cli(server.data_dir, "admin", "list").stdout.split() == ["grace@example.com"]

    # Once an admin exists the screen is gone, for everyone.
    other = new_context(browser).new_page()
    other.goto(f"{server.base_url}/setup")
    assert other.url == f"{server.base_url}/signin"
    other.context.close()
    context.close()


def outside_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 9))  # UDP: nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_first_run_screen_refuses_other_machines_and_proxies(start_server: StartServer) -> None:
    address = outside_address()
    require(address is not None, "this machine has no non-loopback IPv4 address")
    server = start_server({"SLUICE_HOST": "0.0.0.0"})

    assert address is not None
    port = server.port

    # From another address: sent to sign in, and the setup screen says how to make an admin.
    assert exchange(address, port, "GET", "/")[0].headers["location"] == "/signin"
    refused, _ = exchange(address, port, "GET", "/setup")
    assert refused.status == 403
    assert b"sluice admin create" in refused.body
    assert b'name="password"' not in refused.body
    # A POST with a valid CSRF token (from the sign-in page) is refused by the screen itself.
    signin, cookies = exchange(address, port, "GET", "/signin")
    fields = {"csrf_token": page_token(signin.body), "email": "eve@example.com"}
    fields |= {"password": "a long password", "confirm": "a long password"}
    headers = {**FORM, "cookie": cookie_header(cookies)}
    posted, _ = exchange(address, port, "POST", "/setup", urlencode(fields).encode(), headers)
    assert posted.status == 403

    # From this machine but through a proxy (forwarding headers): not local either.
    proxied = server.request("GET", "/setup", headers={"x-forwarded-for": "203.0.113.9"})
    assert proxied.status == 403
    # The control: from this machine directly, the screen is offered.
    assert b'name="confirm"' in server.request("GET", "/setup").body
    assert sluice_cli(server.data_dir, "admin", "list").stdout == ""


@pytest.fixture(scope="module")
def no_admin_yet(start_module_server: StartServer) -> SluiceServer:
    """A server no test gives an admin: its first-run screen stays open to local visitors."""
    return start_module_server()


@pytest.mark.parametrize(
    "header",
    [
        "x-forwarded-for",
        "x-client-ip",
        "cf-connecting-ip",
        "true-client-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-forwarded",
        "forwarded-for",
        "x-original-forwarded-for",
        "forwarded",
        "x-forwarded-proto",
        "via",
        "x-proxy-real-ip",  # not a known name: caught by its shape
    ],
)
def test_first_run_screen_refuses_every_forwarding_header(
    no_admin_yet: SluiceServer, header: str
) -> None:
    value = "1.1 proxy" if header == "via" else "203.0.113.9"
    proxied = no_admin_yet.request("GET", "/setup", headers={header: value})
    assert proxied.status == 403
    assert b'name="password"' not in proxied.body
    home = no_admin_yet.request("GET", "/", headers={header: value})
    assert home.headers["location"] == "/signin"
    # The control: the same request without the header is offered the screen.
    assert b'name="confirm"' in no_admin_yet.request("GET", "/setup").body
    assert no_admin_yet.request("GET", "/").headers["location"] == "/setup"


def test_a_write_key_is_printed_when_it_is_made_and_never_again(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(data_dir=tmp_path / "fresh")  # no source: one is made
    (source,) = server.store.sources()
    (key,) = source.write_keys
    first = server.log()
    assert f"source default: write key {key}" in first
    server.stop()
    server.start()
    again = server.log()[len(first) :]
    assert "listening on" in again
    assert key not in again
    assert "Sources: default. Write keys: the web UI's Sources page or sluice export." in again


def test_every_post_needs_the_csrf_token_of_its_session(
    browser: Browser, server: SluiceServer
) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server.base_url)
    page.goto(f"{server.base_url}/sources")
    token = csrf_token(page)
    post = context.request.post

    def create(source_id: str, **extra: str) -> int:
        response = post(
            f"{server.base_url}/sources", form={"id": source_id, **extra}, max_redirects=0
        )
        return response.status

    assert create("no-token") == 403
    assert create("wrong-token", csrf_token=token[:-2] + "xx") == 403
    # A token of another signed-in browser does not work in this one.
    other = new_context(browser)
    other_page = other.new_page()
    sign_in(other_page, server.base_url)
    assert create("other-token", csrf_token=csrf_token(other_page)) == 403
    other.close()
    # JSON endpoints take the token in a header.
    preview = post(
        f"{server.base_url}/destinations/nope/preview", data={"event": {}}, max_redirects=0
    )
    assert preview.status == 403
    # The control: with this session's token the same request goes through.
    assert create("with-token", csrf_token=token) == 303
    ids = {s.id for s in server.store.sources()}
    assert "with-token" in ids
    assert not ids & {"no-token", "wrong-token", "other-token"}
    context.close()

    # Before sign-in too: the sign-in form is refused without its token.
    fresh = server.request(
        "POST",
        "/signin",
        urlencode({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode(),
        FORM,
    )
    assert fresh.status == 403
    assert SESSION_COOKIE not in fresh.headers.get("set-cookie", "")


def test_forged_expired_and_outdated_sessions_are_refused(server: SluiceServer) -> None:
    store = SqliteStore(server.data_dir / "log.db")
    try:
        keys = SessionKeys(store)
        admin = find_admin(store, ADMIN_EMAIL)
        assert admin is not None
        good, _ = keys.sign(admin.email, password_tag(admin))
        expired, _ = keys.sign(admin.email, password_tag(admin), now=time.time() - SESSION_TTL_S)
    finally:
        store.close()

    def status_with(cookie_value: str) -> int:
        return server.request(
            "GET", "/", headers={"cookie": f"{SESSION_COOKIE}={cookie_value}"}
        ).status

    assert status_with(good) == 200  # the control: a cookie signed with the server's key
    body, mac = good.split(".")
    assert status_with(f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}") == 303
    assert status_with(f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}") == 303
    assert status_with(expired) == 303
    assert status_with("garbage") == 303
    # A new password ends the sessions signed in with the old one.
    done = sluice_cli(
        server.data_dir, "admin", "create", ADMIN_EMAIL, "--update", "--password", ADMIN_PASSWORD
    )
    assert done.returncode == 0, done.stderr
    assert status_with(good) == 303


@pytest.mark.parametrize(
    ("proto", "secure"), [("https", True), (None, False)], ids=["https", "http"]
)
def test_cookies_are_secure_behind_an_https_proxy(
    server: SluiceServer, proto: str | None, secure: bool
) -> None:
    headers = {"x-forwarded-proto": proto} if proto else {}
    signin, cookies = exchange("127.0.0.1", server.port, "GET", "/signin", headers=headers)
    (csrf_cookie,) = cookies
    assert ("; Secure" in csrf_cookie) is secure
    fields = {"csrf_token": page_token(signin.body), "email": ADMIN_EMAIL}
    fields["password"] = ADMIN_PASSWORD
    body = urlencode(fields).encode()
    headers |= {**FORM, "cookie": cookie_header(cookies)}
    _, lines = exchange("127.0.0.1", server.port, "POST", "/signin", body, headers)
    (session,) = [line for line in lines if line.startswith(f"{SESSION_COOKIE}=")]
    attributes = [part.strip() for part in session.split(";")[1:]]
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert f"Max-Age={SESSION_TTL_S}" in attributes
    assert ("Secure" in attributes) is secure


def test_sluice_apply_leaves_admins_and_the_session_key_alone(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    create_admin(server.data_dir)
    cookie = signed_in_cookie_for(server)
    assert server.request("GET", "/", headers={"cookie": cookie}).status == 200
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("sources:\n  - id: only\n")
    done = sluice_cli(server.data_dir, "apply", str(workspace))
    assert done.returncode == 0, done.stderr
    assert "- source/web" in done.stdout  # the apply did replace the workspace
    assert sluice_cli(server.data_dir, "admin", "list").stdout.split() == [ADMIN_EMAIL]
    assert "ui_" not in sluice_cli(server.data_dir, "export").stdout
    assert server.request("GET", "/", headers={"cookie": cookie}).status == 200


def signed_in_cookie_for(server: SluiceServer) -> str:
    signin, cookies = exchange("127.0.0.1", server.port, "GET", "/signin")
    fields = {"csrf_token": page_token(signin.body), "email": ADMIN_EMAIL}
    fields["password"] = ADMIN_PASSWORD
    headers = {**FORM, "cookie": cookie_header(cookies)}
    answer, session = exchange(
        "127.0.0.1", server.port, "POST", "/signin", urlencode(fields).encode(), headers
    )
    assert answer.status == 303
    return cookie_header([c for c in session if c.startswith(SESSION_COOKIE)])
