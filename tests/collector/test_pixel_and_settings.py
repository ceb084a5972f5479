"""The tracking pixel (`GET /v1/pixel/<call>`) and the settings endpoint SDKs load first
(`GET /v1/projects/<writeKey>/settings`), over real HTTP."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import pytest

from server import (
    DISABLED_KEY,
    OTHER_KEY,
    UNKNOWN_KEY,
    WRITE_KEY,
    Response,
    SluiceServer,
    StartServer,
)
from sluice.store.base import StoredEvent


def new_id() -> str:
    return f"pixel-{uuid.uuid4()}"


def b64(message: dict[str, Any], padding: bool = False) -> str:
    text = base64.urlsafe_b64encode(msgspec.json.encode(message)).decode()
    return text if padding else text.rstrip("=")


def get(server: SluiceServer, path: str) -> tuple[Response, list[StoredEvent]]:
    seq = server.store.last_seq()
    res = server.request("GET", path)
    return res, server.events_after(seq)


def assert_gif(res: Response) -> None:
    assert res.status == 200
    assert res.headers["content-type"] == "image/gif"
    assert res.body.startswith(b"GIF89a")
    assert len(res.body) < 100
    assert "no-cache" in res.headers["cache-control"]


def payload(event: StoredEvent) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.json.decode(event.payload)
    return result


@pytest.fixture
def server(sluice_server: SluiceServer) -> SluiceServer:
    return sluice_server


# --- pixel -------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", [False, True], ids=["no-padding", "padding"])
def test_pixel_with_base64_data(server: SluiceServer, padding: bool) -> None:
    message = {
        "userId": "u1",
        "event": "Email Opened",
        "properties": {"subject": "Welcome?", "campaign": "onboarding/1"},
        "messageId": new_id(),
        "writeKey": WRITE_KEY,
    }
    res, stored = get(server, f"/v1/pixel/track?data={b64(message, padding)}")
    assert_gif(res)
    assert len(stored) == 1
    event = stored[0]
    assert (event.type, event.event, event.source_id) == ("track", "Email Opened", "web")
    stored_payload = payload(event)
    assert stored_payload["messageId"] == message["messageId"]
    assert stored_payload["properties"] == message["properties"]
    assert "writeKey" not in stored_payload
    assert "receivedAt" in stored_payload


def test_pixel_with_standard_base64_alphabet(server: SluiceServer) -> None:
    """Some senders use `+` and `/`; an unescaped `+` even arrives as a space."""
    message = {"anonymousId": "a1", "traits": {"bio": "???>>>"}, "writeKey": WRITE_KEY}
    data = base64.b64encode(msgspec.json.encode(message)).decode().rstrip("=")
    assert "+" in data or "/" in data
    res, stored = get(server, f"/v1/pixel/identify?data={quote(data, safe='')}")
    assert_gif(res)
    assert [payload(e)["traits"] for e in stored] == [{"bio": "???>>>"}]


@pytest.mark.parametrize("call", ["identify", "group", "alias", "page", "screen", "track"])
def test_pixel_for_every_call(server: SluiceServer, call: str) -> None:
    message = {
        "userId": "u1",
        "event": "e",
        "groupId": "g",
        "previousId": "p",
        "writeKey": WRITE_KEY,
        "messageId": new_id(),
    }
    res, stored = get(server, f"/v1/pixel/{call}?data={b64(message)}")
    assert_gif(res)
    assert [(e.type, e.message_id) for e in stored] == [(call, message["messageId"])]


def test_pixel_with_dotted_query(server: SluiceServer) -> None:
    message_id = new_id()
    query = (
        f"userId=u1&event=Email%20Opened&properties.subject=Hi&properties.meta.n=2"
        f"&context.campaign.name=spring&messageId={message_id}&writeKey={WRITE_KEY}"
    )
    res, stored = get(server, f"/v1/pixel/track?{query}")
    assert_gif(res)
    assert len(stored) == 1
    stored_payload = payload(stored[0])
    assert stored_payload["event"] == "Email Opened"
    assert stored_payload["userId"] == "u1"
    assert stored_payload["properties"] == {"subject": "Hi", "meta": {"n": "2"}}
    assert stored_payload["context"] == {"campaign": {"name": "spring"}}
    assert stored_payload["messageId"] == message_id
    assert "writeKey" not in stored_payload


def test_pixel_dotted_query_encoded_with_urlencode(server: SluiceServer) -> None:
    query = urlencode({"anonymousId": "a 1", "name": "Pricing & Plans", "writeKey": OTHER_KEY})
    res, stored = get(server, f"/v1/pixel/page?{query}")
    assert_gif(res)
    assert [(e.source_id, payload(e)["name"]) for e in stored] == [("app", "Pricing & Plans")]


NOT_STORED = [
    ("garbage-data", "/v1/pixel/track?data=%%%garbage%%%"),
    ("data-not-json", f"/v1/pixel/track?data={base64.urlsafe_b64encode(b'hello').decode()}"),
    ("data-a-json-array", f"/v1/pixel/track?data={base64.urlsafe_b64encode(b'[1]').decode()}"),
    ("data-one-char-too-many", "/v1/pixel/track?data=eyJ1c2VySWQiOiJ1In0x"),
    ("unknown-key", "/v1/pixel/track?" + urlencode(
        {"userId": "u", "event": "e", "writeKey": UNKNOWN_KEY})),
    ("disabled-source", "/v1/pixel/track?" + urlencode(
        {"userId": "u", "event": "e", "writeKey": DISABLED_KEY})),
    ("no-key", "/v1/pixel/track?userId=u&event=e"),
    ("no-ids", f"/v1/pixel/track?event=e&writeKey={WRITE_KEY}"),
    ("track-without-event", f"/v1/pixel/track?userId=u&writeKey={WRITE_KEY}"),
    ("unknown-call", f"/v1/pixel/purchase?userId=u&writeKey={WRITE_KEY}"),
    ("no-query", "/v1/pixel/track"),
    ("empty-data", "/v1/pixel/track?data="),
]  # fmt: skip


@pytest.mark.parametrize("path", [p for _, p in NOT_STORED], ids=[i for i, _ in NOT_STORED])
def test_pixel_always_answers_a_gif(server: SluiceServer, path: str) -> None:
    res, stored = get(server, path)
    assert_gif(res)
    assert stored == []


def test_pixel_head_request(server: SluiceServer) -> None:
    res = server.request("HEAD", "/v1/pixel/track")
    assert res.status == 200
    assert res.headers["content-type"] == "image/gif"


# --- settings ----------------------------------------------------------------------------------
def test_settings_for_a_write_key(server: SluiceServer) -> None:
    res = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"
    settings = res.json()
    segment = settings["integrations"]["Segment.io"]
    assert segment["apiKey"] == WRITE_KEY
    assert segment["apiHost"] == f"127.0.0.1:{server.port}/v1"
    assert segment["protocol"] == "http"
    assert segment["unbundledIntegrations"] == []
    assert isinstance(settings["plan"], dict)


def test_settings_follow_the_host_the_client_used(server: SluiceServer) -> None:
    res = server.request(
        "GET", f"/v1/projects/{OTHER_KEY}/settings", headers={"Host": "cdp.example.com"}
    )
    assert res.status == 200
    segment = res.json()["integrations"]["Segment.io"]
    assert (segment["apiKey"], segment["apiHost"]) == (OTHER_KEY, "cdp.example.com/v1")


@pytest.mark.parametrize("key", [UNKNOWN_KEY, DISABLED_KEY], ids=["unknown", "disabled"])
def test_settings_for_an_unknown_key_is_404(server: SluiceServer, key: str) -> None:
    res = server.request("GET", f"/v1/projects/{key}/settings")
    assert res.status == 404
    assert res.headers["content-type"] == "application/json"
    body = res.json()
    assert body["code"] == "invalid_write_key"
    assert body["message"]


def test_settings_with_a_public_url(start_server: StartServer) -> None:
    server = start_server({"SLUICE_PUBLIC_URL": "https://cdp.example.com/sluice/"})
    res = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings")
    segment = res.json()["integrations"]["Segment.io"]
    assert (segment["apiHost"], segment["protocol"]) == ("cdp.example.com/sluice/v1", "https")


def test_settings_carry_cors_headers(server: SluiceServer) -> None:
    origin = "https://shop.example.com"
    res = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings", headers={"Origin": origin})
    assert res.headers["access-control-allow-origin"] == origin
