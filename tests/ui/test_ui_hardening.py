"""The web UI keeps secrets and trusts no one it should not, over real HTTP against `sluice serve`:
the request preview redacts credentials, the settings form never sends a secret back (and keeps
it when the field is left empty), the snippet's host follows forwarding headers only from a
trusted proxy, and a draft filter that does not compile is previewed as such."""

from __future__ import annotations

import html
import re
from typing import Any, ClassVar
from urllib.parse import urlencode

import msgspec
import pytest
from ui_kit import ADMIN_EMAIL, ADMIN_PASSWORD, StartServer, cookie_header, create_admin, exchange

from server import SluiceServer
from sluice.destinations.base import Destination, DestinationSettings
from sluice.store.base import ConfigObject
from sluice.ui.forms import settings_fields
from sluice.ui.session import SESSION_COOKIE

FORM = {"content-type": "application/x-www-form-urlencoded"}
EVENT = {"type": "track", "event": "Signed Up", "userId": "user-1", "messageId": "pv-1"}
GA4_SECRET = "ga4-SeCrEt-value"
HOOK_PASSWORD = "hunter2-password"
HOOK_TOKEN = "tok-1234567"
SHARED_SECRET = "whsec-abcdef"
SLACK_TOKEN = "XXXXsecretXXXX"
SLACK_URL = f"https://hooks.slack.com/services/T0001/B0002/{SLACK_TOKEN}"


class Client:
    """One signed-in admin over raw HTTP: the session cookie and its CSRF token."""

    def __init__(self, server: SluiceServer) -> None:
        self.server = server
        signin, cookies = self.exchange("GET", "/signin")
        fields = {"csrf_token": form_token(signin.body), "email": ADMIN_EMAIL}
        fields["password"] = ADMIN_PASSWORD
        headers = {**FORM, "cookie": cookie_header(cookies)}
        answer, session = self.exchange("POST", "/signin", urlencode(fields).encode(), headers)
        assert answer.status == 303, answer.body
        self.cookie = cookie_header([c for c in session if c.startswith(SESSION_COOKIE)])
        self.token = form_token(self.get("/sources").body)

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, list[str]]:
        return exchange("127.0.0.1", self.server.port, method, path, body, headers)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        answer, _ = self.exchange("GET", path, headers={"cookie": self.cookie, **(headers or {})})
        assert answer.status == 200, (answer.status, answer.body[:300])
        return answer

    def post_form(self, path: str, fields: dict[str, str]) -> Any:
        body = urlencode({"csrf_token": self.token, **fields}).encode()
        answer, _ = self.exchange("POST", path, body, {**FORM, "cookie": self.cookie})
        return answer

    def preview(self, destination_id: str, body: Any) -> Any:
        headers = {
            "content-type": "application/json",
            "cookie": self.cookie,
            "x-csrf-token": self.token,
        }
        data = msgspec.json.encode(body)
        answer, _ = self.exchange("POST", f"/destinations/{destination_id}/preview", data, headers)
        return answer


def form_token(body: bytes) -> str:
    match = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert match, body[:500]
    return match.group(1).decode()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    """Proxies trusted on loopback, where the tests connect from."""
    server = start_module_server({"SLUICE_TRUSTED_PROXIES": "127.0.0.1"})
    create_admin(server.data_dir)
    return server


@pytest.fixture(scope="module")
def client(server: SluiceServer) -> Client:
    return Client(server)


def put_destination(server: SluiceServer, doc: dict[str, Any]) -> None:
    server.store.put_config(ConfigObject("destination", doc["id"], msgspec.json.encode(doc)))


def stored_destination(server: SluiceServer, destination_id: str) -> dict[str, Any]:
    (obj,) = [o for o in server.store.list_config("destination") if o.id == destination_id]
    doc: dict[str, Any] = msgspec.json.decode(obj.body)
    return doc


# --- 1. the request preview redacts credentials ---------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "event", "secrets", "url"),
    [
        (
            {
                "id": "ga4",
                "type": "google-analytics-4",
                "settings": {"api_secret": GA4_SECRET, "measurement_id": "G-TEST"},
            },
            {"type": "page", "name": "Home", "userId": "user-1", "messageId": "pv-1"},
            [GA4_SECRET],
            "https://www.google-analytics.com/mp/collect?api_secret=<redacted>"
            "&measurement_id=G-TEST",
        ),
        (
            {
                "id": "hook-secret",
                "type": "webhook",
                "settings": {
                    "urls": [f"https://ops:{HOOK_PASSWORD}@hooks.example/in?token={HOOK_TOKEN}"],
                    "headers": {"Authorization": "Bearer bearer-value-1", "X-Team": "growth"},
                    "shared_secret": SHARED_SECRET,
                },
            },
            EVENT,
            [HOOK_PASSWORD, HOOK_TOKEN, "bearer-value-1"],
            "https://ops:<redacted>@hooks.example/in?token=<redacted>",
        ),
        (
            {
                "id": "slack",
                "type": "slack",
                "mappings": [
                    {
                        "action": "postToChannel",
                        "trigger": 'type = "track"',
                        "mapping": {"url": SLACK_URL, "text": "{{userId}} signed up"},
                    }
                ],
            },
            EVENT,
            [SLACK_TOKEN, "T0001/B0002"],
            "https://hooks.slack.com/services/<redacted>",
        ),
    ],
    ids=["ga4-api-secret-in-query", "webhook-user-info-token-and-headers", "slack-webhook-path"],
)
def test_the_request_preview_shows_no_secret(
    server: SluiceServer,
    client: Client,
    doc: dict[str, Any],
    event: dict[str, Any],
    secrets: list[str],
    url: str,
) -> None:
    put_destination(server, doc)
    answer = client.preview(doc["id"], {"event": event})
    assert answer.status == 200
    for secret in secrets:
        assert secret.encode() not in answer.body
    result = answer.json()
    assert result["passes"] is True, result
    (request,) = result["requests"]
    assert request["url"] == url
    if doc["type"] == "webhook":
        assert request["headers"]["Authorization"] == "<redacted>"
        assert request["headers"]["X-Signature"] == "<redacted>"
        assert request["headers"]["X-Team"] == "growth"  # the rest is left as it is sent
        assert request["body"] == event


# --- 2. the settings form treats `secret_settings` as secrets -------------------------------------


class PagerSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    routing_url: str  # no secret-looking name: only `secret_settings` says it is one
    team: str = ""


class Pager(Destination):
    id: ClassVar[str] = "pager-test"
    name: ClassVar[str] = "Pager"
    Settings: ClassVar[type[DestinationSettings]] = PagerSettings
    actions: ClassVar[dict[str, Any]] = {}
    presets: ClassVar[tuple[()]] = ()
    secret_settings: ClassVar[frozenset[str]] = frozenset({"routing_url"})


def test_secret_settings_are_secret_fields_whatever_their_name() -> None:
    kinds = {f.name: f.kind for f in settings_fields(Pager)}
    assert kinds == {"routing_url": "secret", "team": "text", "endpoint": "text"}


def test_the_settings_form_never_shows_a_secret_and_keeps_it_when_left_empty(
    server: SluiceServer, client: Client
) -> None:
    settings = {"urls": ["https://hooks.example/in"], "shared_secret": SHARED_SECRET}
    put_destination(server, {"id": "signed", "type": "webhook", "settings": settings})
    page = client.get("/destinations/signed").body
    assert SHARED_SECRET.encode() not in page
    secret_input = re.search(rb'<input name="settings.shared_secret"[^>]*>', page)
    assert secret_input, page
    assert b'type="password"' in secret_input.group(0)
    assert b'value=""' in secret_input.group(0)

    # Saved without retyping it: the stored secret stays, other settings change.
    fields = {"name": "Signed", "enabled": "on", "settings.urls": "https://hooks.example/v2"}
    saved = client.post_form("/destinations/signed", {**fields, "settings.shared_secret": ""})
    assert saved.status == 303, saved.body[:500]
    assert stored_destination(server, "signed")["settings"] == {
        "urls": ["https://hooks.example/v2"],
        "shared_secret": SHARED_SECRET,
    }
    assert SHARED_SECRET.encode() not in client.get("/destinations/signed").body

    # A refused form does not echo the secret either, and keeps the stored one.
    refused = client.post_form(
        "/destinations/signed",
        {**fields, "settings.urls": "ftp://nope", "settings.shared_secret": "typed-secret-2"},
    )
    assert refused.status == 400
    assert b"typed-secret-2" not in refused.body and SHARED_SECRET.encode() not in refused.body
    assert stored_destination(server, "signed")["settings"]["shared_secret"] == SHARED_SECRET

    # A new value replaces it; the clear box removes an optional one.
    changed = client.post_form("/destinations/signed", {**fields, "settings.shared_secret": "n3w"})
    assert changed.status == 303
    assert stored_destination(server, "signed")["settings"]["shared_secret"] == "n3w"
    cleared = client.post_form(
        "/destinations/signed", {**fields, "clear.settings.shared_secret": "on"}
    )
    assert cleared.status == 303
    assert "shared_secret" not in stored_destination(server, "signed")["settings"]


def test_a_required_secret_need_not_be_retyped(server: SluiceServer, client: Client) -> None:
    settings = {"api_secret": GA4_SECRET, "measurement_id": "G-TEST"}
    put_destination(server, {"id": "ga4-form", "type": "google-analytics-4", "settings": settings})
    page = client.get("/destinations/ga4-form").body
    assert GA4_SECRET.encode() not in page
    secret_input = re.search(rb'<input name="settings.api_secret"[^>]*>', page)
    assert secret_input and b"required" not in secret_input.group(0)  # the browser lets it go
    fields = {"enabled": "on", "settings.measurement_id": "G-OTHER", "settings.api_secret": ""}
    assert client.post_form("/destinations/ga4-form", fields).status == 303
    assert stored_destination(server, "ga4-form")["settings"] == {
        "api_secret": GA4_SECRET,
        "measurement_id": "G-OTHER",
    }


# --- 3. the snippet's host: forwarding headers only from a trusted proxy -------------------------

FORWARDED = [
    {"x-forwarded-proto": "https", "x-forwarded-host": "cdp.example.com"},
    {"forwarded": 'for=192.0.2.1;proto=https;host="cdp.example.com"'},
]


@pytest.mark.parametrize("headers", FORWARDED, ids=["x-forwarded", "forwarded"])
def test_the_snippet_host_follows_a_trusted_proxy(client: Client, headers: dict[str, str]) -> None:
    page = html.unescape(client.get("/sources/web", headers).body.decode())
    assert 'analytics._cdn = "https://cdp.example.com"' in page
    assert "http://127.0.0.1" not in page


@pytest.fixture(scope="module")
def untrusted(start_module_server: StartServer) -> Client:
    """A server that trusts proxies elsewhere, not on loopback where the tests connect from."""
    server = start_module_server({"SLUICE_TRUSTED_PROXIES": "10.0.0.0/8"})
    create_admin(server.data_dir)
    return Client(server)


@pytest.mark.parametrize("headers", FORWARDED, ids=["x-forwarded", "forwarded"])
def test_the_snippet_host_ignores_forwarding_headers_from_anyone_else(
    untrusted: Client, headers: dict[str, str]
) -> None:
    page = html.unescape(untrusted.get("/sources/web", headers).body.decode())
    assert f'analytics._cdn = "http://127.0.0.1:{untrusted.server.port}"' in page
    assert "cdp.example.com" not in page


# --- 4. a draft filter that does not compile ------------------------------------------------------

BROKEN = {"title": "No tests", "if": "userId = 'test", "action": "drop", "enabled": "on"}
FQL_ERROR = 'unterminated string at position 9 in "userId = \'test"'


def test_a_draft_filter_that_does_not_compile_is_previewed_as_invalid(
    server: SluiceServer, client: Client
) -> None:
    put_destination(
        server, {"id": "drafts", "type": "webhook", "settings": {"urls": ["https://h.example/"]}}
    )
    answer = client.preview("drafts", {"event": EVENT, "draft": {"kind": "filter", "form": BROKEN}})
    assert answer.status == 200
    result = answer.json()
    assert (result["ok"], result["passes"]) == (True, False)
    assert result["reason"] == "invalid_filter:No tests"
    assert result["problems"] == [f"invalid filter “No tests”: {FQL_ERROR}"]
    assert result["requests"] == []

    # Disabled, it drops nothing, but saving it would be refused: the preview says why.
    disabled = {**BROKEN, "enabled": ""}
    answer = client.preview(
        "drafts", {"event": EVENT, "draft": {"kind": "filter", "form": disabled}}
    )
    result = answer.json()
    assert result["passes"] is True
    assert result["problems"] == [
        f"invalid filter “No tests”: {FQL_ERROR} (disabled: it drops nothing, but cannot be saved)"
    ]


@pytest.mark.parametrize(
    "draft",
    [
        {"kind": "filter", "form": ["not", "a", "form"]},
        {"kind": "filter", "form": "userId = 'test"},
        {"kind": "mapping", "form": 7},
    ],
    ids=["form-list", "form-string", "form-number"],
)
def test_a_malformed_draft_is_an_error_not_a_500(
    server: SluiceServer, client: Client, draft: dict[str, Any]
) -> None:
    put_destination(
        server, {"id": "drafts", "type": "webhook", "settings": {"urls": ["https://h.example/"]}}
    )
    answer = client.preview("drafts", {"event": EVENT, "draft": draft})
    assert answer.status == 200
    assert answer.json() == {"ok": False, "error": "the draft's form must be a JSON object"}
