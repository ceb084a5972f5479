"""The Tracking API over real HTTP: paths, write keys, bodies, errors, per-item validation,
normalisation as stored, deduplication and CORS, against `sluice serve` in a subprocess."""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from typing import Any

import msgspec
import pytest

from server import (
    DISABLED_KEY,
    OTHER_KEY,
    UNKNOWN_KEY,
    WRITE_KEY,
    CounterDelta,
    Response,
    SluiceServer,
    StartServer,
    basic,
    source_body,
    wait_for,
)
from sluice.spec.calls import RejectReason
from sluice.spec.timestamps import format_ms, parse_ms
from sluice.store.base import ConfigObject, StoredEvent
from sluice.store.base_event_store import EventQuery

SUCCESS = b'{"success":true}'
MAX_MESSAGE_BYTES = 8192  # the shared server's limits (conftest.SHARED_ENV)
MAX_BATCH_BYTES = 131072
MAX_BATCH_ITEMS = 50

CALL_FIELDS: dict[str, dict[str, Any]] = {
    "identify": {"traits": {"plan": "pro"}},
    "track": {"event": "Clicked"},
    "page": {"name": "Home"},
    "screen": {"name": "Main"},
    "group": {"groupId": "g1"},
    "alias": {"previousId": "p1"},
}


def new_id() -> str:
    return f"test-{uuid.uuid4()}"


def call(kind: str, **fields: Any) -> dict[str, Any]:
    """A valid message of the given type with a fresh messageId."""
    return {"type": kind, "userId": "u1", "messageId": new_id(), **CALL_FIELDS[kind], **fields}


def payload(event: StoredEvent) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.json.decode(event.payload)
    return result


def send(
    server: SluiceServer, path: str, body: Any, **kwargs: Any
) -> tuple[Response, list[StoredEvent]]:
    """POST, then the events the request added to the log (the 200 means they are committed)."""
    seq = server.store.last_seq()
    res = server.post(path, body, **kwargs)
    return res, server.events_after(seq)


def assert_success(res: Response) -> None:
    assert res.status == 200, res.body
    assert res.body == SUCCESS
    assert res.headers["content-type"] == "application/json"


def assert_error(res: Response, status: int, code: str) -> dict[str, Any]:
    assert res.status == status, res.body
    assert res.headers["content-type"] == "application/json"
    body: dict[str, Any] = res.json()
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def server(sluice_server: SluiceServer) -> SluiceServer:
    return sluice_server


# --- paths -------------------------------------------------------------------------------------
SINGLE_PATHS = [(f"/v1/{kind}", kind) for kind in CALL_FIELDS] + [
    (f"/v1/{kind[0]}", kind) for kind in CALL_FIELDS
]


@pytest.mark.parametrize(("path", "kind"), SINGLE_PATHS, ids=[p for p, _ in SINGLE_PATHS])
def test_single_call_paths_take_the_type_from_the_path(
    server: SluiceServer, path: str, kind: str
) -> None:
    body = call(kind)
    body["type"] = "track" if kind == "identify" else "identify"  # the path wins
    res, stored = send(server, path, body)
    assert_success(res)
    assert len(stored) == 1
    event = stored[0]
    assert (event.type, event.source_id, event.message_id) == (kind, "web", body["messageId"])
    assert payload(event)["type"] == kind
    assert event.event == ("Clicked" if kind == "track" else None)


def test_single_call_without_a_type_in_the_body(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/t", {"userId": "u1", "event": "Typeless"})
    assert_success(res)
    assert [(e.type, e.event) for e in stored] == [("track", "Typeless")]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/b"])
def test_batch_paths_store_every_call_type(server: SluiceServer, path: str) -> None:
    items = [call(kind) for kind in CALL_FIELDS]
    res, stored = send(server, path, {"batch": items})
    assert_success(res)
    assert [(e.type, e.message_id) for e in stored] == [(i["type"], i["messageId"]) for i in items]


def test_batch_envelope_message_id_is_not_an_event(server: SluiceServer) -> None:
    """analytics-go sends an envelope `messageId`."""
    items = [call("track"), call("identify")]
    envelope_id = new_id()
    res, stored = send(server, "/v1/batch", {"messageId": envelope_id, "batch": items})
    assert_success(res)
    assert [e.message_id for e in stored] == [i["messageId"] for i in items]


def test_empty_batch_is_accepted(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/batch", {"batch": []})
    assert_success(res)
    assert stored == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"series":[{"type":"Counter","metric":"analytics_js.invoke","value":1}]}',
         "text/plain"),
        (b"not even json", "text/plain"),
        (b"", None),
    ],
    ids=["series", "garbage", "empty"],
)  # fmt: skip
def test_telemetry_path_answers_200_and_stores_nothing(
    server: SluiceServer, body: bytes, content_type: str | None
) -> None:
    delta = CounterDelta(server)
    seq = server.store.last_seq()
    headers = {"Content-Type": content_type} if content_type else {}
    res = server.request("POST", "/v1/m", body, headers)
    assert_success(res)
    assert server.store.last_seq() == seq
    delta.settle()
    assert delta[("web", "received")] == 0


# The Tracking API never redirects (SDKs would not follow); the UI at `/` sends browsers to sign in.
NOT_REDIRECTS = [
    ("POST", "/v1/track/"),
    ("POST", "/v1/Track"),
    ("POST", "/v1"),
    ("POST", "/v1/"),
    ("GET", "/v1"),
    ("GET", "/v1/track"),
    ("GET", "/v1/batch"),
    ("PUT", "/v1/batch"),
    ("HEAD", "/v1/t"),
    ("POST", "//v1/track"),
    ("POST", "/v1/pixel/track"),
    ("GET", "/v1/projects/x/settings/"),
    ("POST", "/v1/unknown"),
]


@pytest.mark.parametrize(
    ("method", "path"), NOT_REDIRECTS, ids=[f"{m} {p}" for m, p in NOT_REDIRECTS]
)
def test_never_redirects(server: SluiceServer, method: str, path: str) -> None:
    body = msgspec.json.encode(call("track"))
    res = server.request(method, path, body, {"Authorization": basic(WRITE_KEY)})
    assert not 300 <= res.status < 400, (res.status, res.headers)
    assert "location" not in res.headers


def test_wrong_method_on_an_ingest_path(server: SluiceServer) -> None:
    assert_error(server.request("GET", "/v1/track"), 405, "method_not_allowed")


def test_query_string_does_not_change_the_route(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/track?source=email", call("track"))
    assert_success(res)
    assert len(stored) == 1


def test_healthz(server: SluiceServer) -> None:
    res = server.request("GET", "/healthz")
    assert (res.status, res.json()) == (200, {"ok": True})


# --- write keys --------------------------------------------------------------------------------
def _auth_cases() -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    single = call("track")
    return [
        ("basic-with-colon", "/v1/track", dict(single), {"Authorization": basic(WRITE_KEY)}),
        ("basic-without-colon", "/v1/track", dict(single),
         {"Authorization": basic(WRITE_KEY, colon=False)}),
        ("body-key-no-header", "/v1/track", {**single, "writeKey": WRITE_KEY}, {}),
        ("bearer-plus-body-key", "/v1/track", {**single, "writeKey": WRITE_KEY},
         {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}),
        ("lowercase-basic-scheme", "/v1/track", dict(single),
         {"Authorization": "basic " + basic(WRITE_KEY).split()[1]}),
        ("batch-envelope-key", "/v1/batch", {"batch": [dict(single)], "writeKey": WRITE_KEY}, {}),
        ("key-on-first-batch-item", "/v1/b",
         {"batch": [{**single, "writeKey": WRITE_KEY}, call("identify")]}, {}),
        ("body-key-beats-header", "/v1/track", {**single, "writeKey": WRITE_KEY},
         {"Authorization": basic(OTHER_KEY)}),
    ]  # fmt: skip


AUTH_CASES = _auth_cases()


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [case[1:] for case in AUTH_CASES],
    ids=[case[0] for case in AUTH_CASES],
)
def test_write_key_forms(
    server: SluiceServer, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    body = msgspec.json.decode(msgspec.json.encode(body))  # fresh messageIds per run
    items = body.get("batch", [body])
    for item in items:
        item["messageId"] = new_id()
    res, stored = send(server, path, body, key=None, headers=headers)
    assert_success(res)
    assert [e.message_id for e in stored] == [i["messageId"] for i in items]
    assert {e.source_id for e in stored} == {"web"}
    for event in stored:
        assert "writeKey" not in payload(event)


UNAUTHORIZED = [
    ("unknown-basic", {"Authorization": basic(UNKNOWN_KEY)}, {}),
    ("unknown-body-key", {}, {"writeKey": UNKNOWN_KEY}),
    ("no-key", {}, {}),
    ("bearer-without-body-key", {"Authorization": "Bearer some.jwt.token"}, {}),
    ("malformed-basic", {"Authorization": "Basic %%%not-base64"}, {}),
    ("empty-basic", {"Authorization": "Basic "}, {}),
    ("empty-body-key", {}, {"writeKey": ""}),
]


@pytest.mark.parametrize(
    ("headers", "extra"),
    [case[1:] for case in UNAUTHORIZED],
    ids=[case[0] for case in UNAUTHORIZED],
)
def test_unknown_write_key_is_401(
    server: SluiceServer, headers: dict[str, str], extra: dict[str, Any]
) -> None:
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/track", {**call("track"), **extra}, key=None, headers=headers)
    assert_error(res, 401, "invalid_write_key")
    assert stored == []
    delta.settle()
    assert delta[("", "unauthorized")] == 1
    assert delta[("web", "received")] == 0


def test_unknown_write_key_on_a_batch_is_401(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/batch", {"batch": [call("track")]}, key=UNKNOWN_KEY)
    assert_error(res, 401, "invalid_write_key")
    assert stored == []


def test_disabled_source_is_401(server: SluiceServer) -> None:
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/track", call("track"), key=DISABLED_KEY)
    assert_error(res, 401, "source_disabled")
    assert stored == []
    delta.settle()
    assert delta[("off", "unauthorized")] == 1


def test_batch_items_with_their_own_write_keys(server: SluiceServer) -> None:
    own = call("track", writeKey=OTHER_KEY)
    unknown = call("track", writeKey=UNKNOWN_KEY)
    disabled = call("track", writeKey=DISABLED_KEY)
    plain = call("identify")
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/batch", {"batch": [own, unknown, disabled, plain]})
    assert_success(res)
    assert [(e.message_id, e.source_id) for e in stored] == [
        (own["messageId"], "app"),
        (plain["messageId"], "web"),
    ]
    assert "writeKey" not in payload(stored[0])
    delta.settle()
    assert delta[("web", f"rejected:{RejectReason.INVALID_WRITE_KEY}")] == 1
    assert delta[("web", f"rejected:{RejectReason.SOURCE_DISABLED}")] == 1
    assert delta[("app", "stored")] == 1


def test_new_sources_are_picked_up_while_running(start_server: StartServer) -> None:
    server = start_server()
    key = "wk_late_1234567890"
    assert server.post("/v1/track", call("track"), key=key).status == 401
    server.store.put_config(ConfigObject("source", "late", source_body("late", "Late", [key])))
    wait_for(lambda: server.post("/v1/track", call("track"), key=key).status == 200, timeout=10)
    [event] = server.store.newest(EventQuery(source_id="late"))
    assert event.source_id == "late"
    # Disabling it takes effect the same way.
    body = source_body("late", "Late", [key], enabled=False)
    server.store.put_config(ConfigObject("source", "late", body))
    wait_for(lambda: server.post("/v1/track", call("track"), key=key).status == 401, timeout=10)


# --- bodies ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "text/plain", None],
    ids=["json", "json-charset", "text-plain", "none"],
)
@pytest.mark.parametrize("path", ["/v1/t", "/v1/batch"])
def test_any_content_type_is_parsed_as_json(
    server: SluiceServer, path: str, content_type: str | None
) -> None:
    item = call("track")
    body = {"batch": [item]} if path == "/v1/batch" else item
    headers = {"Authorization": basic(WRITE_KEY)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    seq = server.store.last_seq()
    res = server.request("POST", path, msgspec.json.encode(body), headers)
    assert_success(res)
    assert [e.message_id for e in server.events_after(seq)] == [item["messageId"]]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)],
    ids=["gzip", "x-gzip", "deflate-zlib"],
)
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_compressed_bodies(server: SluiceServer, path: str, encoding: str, compress: Any) -> None:
    item = call("track", properties={"text": "x" * 5000})
    body = {"batch": [item]} if path == "/v1/batch" else item
    data = compress(msgspec.json.encode(body))
    res, stored = send(server, path, data, headers={"Content-Encoding": encoding})
    assert_success(res)
    assert [e.message_id for e in stored] == [item["messageId"]]
    assert payload(stored[0])["properties"]["text"] == "x" * 5000


def test_gzip_that_inflates_past_the_limit_is_400(server: SluiceServer) -> None:
    item = call("track", properties={"text": "x" * (MAX_MESSAGE_BYTES * 4)})
    data = gzip.compress(msgspec.json.encode(item))
    assert len(data) < MAX_MESSAGE_BYTES
    res, stored = send(server, "/v1/track", data, headers={"Content-Encoding": "gzip"})
    assert_error(res, 400, "request_too_large")
    assert stored == []


def test_broken_gzip_is_400(server: SluiceServer) -> None:
    res = server.post(
        "/v1/track", b"\x1f\x8b not really gzip", headers={"Content-Encoding": "gzip"}
    )
    assert_error(res, 400, "invalid_gzip")


def test_unknown_content_encoding_is_400(server: SluiceServer) -> None:
    res = server.post("/v1/track", call("track"), headers={"Content-Encoding": "br"})
    assert_error(res, 400, "unsupported_encoding")


def test_retry_headers_are_tolerated(server: SluiceServer) -> None:
    item = call("track", _metadata={"retryCount": 3})
    res, stored = send(server, "/v1/t", item, headers={"X-Retry-Count": "3"})
    assert_success(res)
    assert payload(stored[0])["_metadata"] == {"retryCount": 3}


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"", b"   ", b'{"userId": "u"} trailing', b"{'single': 'quotes'}"],
    ids=["truncated", "words", "empty", "blank", "trailing-junk", "single-quotes"],
)
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_invalid_json_is_400(server: SluiceServer, path: str, body: bytes) -> None:
    res, stored = send(server, path, body)
    assert_error(res, 400, "invalid_json")
    assert stored == []


@pytest.mark.parametrize(
    "body", [b"[]", b'[{"userId":"u"}]', b'"track"', b"42", b"null", b"true"],
    ids=["empty-array", "array", "string", "number", "null", "bool"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_non_object_body_is_400(server: SluiceServer, path: str, body: bytes) -> None:
    res, stored = send(server, path, body)
    assert_error(res, 400, "invalid_request")
    assert stored == []


@pytest.mark.parametrize(
    "body",
    [{}, {"batch": {"type": "track"}}, {"batch": "[]"}, {"batch": None}],
    ids=["no-batch", "object", "string", "null"],
)
def test_batch_without_an_array_is_400(server: SluiceServer, body: dict[str, Any]) -> None:
    assert_error(server.post("/v1/batch", body), 400, "invalid_batch")


def test_single_call_over_the_message_limit_is_400(server: SluiceServer) -> None:
    item = call("track", properties={"text": "x" * MAX_MESSAGE_BYTES})
    res, stored = send(server, "/v1/track", item)
    assert_error(res, 400, "request_too_large")
    assert stored == []


def test_single_call_within_the_body_limit_is_stored(server: SluiceServer) -> None:
    """A body the limit admits must not be dropped for the bytes normalisation adds to it."""
    item = call("track", properties={"text": ""})
    room = MAX_MESSAGE_BYTES - len(msgspec.json.encode(item)) - 16
    item["properties"]["text"] = "x" * room
    body = msgspec.json.encode(item)
    assert MAX_MESSAGE_BYTES - 32 < len(body) <= MAX_MESSAGE_BYTES
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/track", body)
    assert_success(res)
    delta.settle()
    assert delta[("web", f"rejected:{RejectReason.MESSAGE_TOO_LARGE}")] == 0
    assert [e.message_id for e in stored] == [item["messageId"]]


def test_batch_item_limit_applies_to_the_item_as_sent(server: SluiceServer) -> None:
    """An item just under the limit is stored, although normalisation makes it larger."""
    item = call("track", properties={"text": ""})
    item["properties"]["text"] = "x" * (MAX_MESSAGE_BYTES - len(msgspec.json.encode(item)) - 8)
    assert MAX_MESSAGE_BYTES - 16 < len(msgspec.json.encode(item)) <= MAX_MESSAGE_BYTES
    res, stored = send(server, "/v1/batch", {"batch": [item], "sentAt": "2024-01-01T00:00:00Z"})
    assert_success(res)
    assert [e.message_id for e in stored] == [item["messageId"]]
    assert len(stored[0].payload) > MAX_MESSAGE_BYTES


def test_pretty_printed_json_is_stored_as_json(server: SluiceServer) -> None:
    item = call("track", properties={"nested": {"list": [1, {"a": None}]}, "n": 1.5})
    body = json.dumps({"batch": [item]}, indent=4, ensure_ascii=False).encode()
    res, stored = send(server, "/v1/batch", body)
    assert_success(res)
    assert payload(stored[0])["properties"] == item["properties"]


def test_batch_over_the_batch_limit_is_400(server: SluiceServer) -> None:
    items = [call("track", properties={"text": "x" * 4000}) for _ in range(34)]
    body = msgspec.json.encode({"batch": items})
    assert len(body) > MAX_BATCH_BYTES
    res, stored = send(server, "/v1/batch", body)
    assert_error(res, 400, "request_too_large")
    assert stored == []


def test_batch_may_be_larger_than_one_message(server: SluiceServer) -> None:
    items = [call("track", properties={"text": "x" * 4000}) for _ in range(20)]
    body = msgspec.json.encode({"batch": items})
    assert MAX_MESSAGE_BYTES < len(body) < MAX_BATCH_BYTES
    res, stored = send(server, "/v1/batch", body)
    assert_success(res)
    assert len(stored) == 20


def test_rate_limit_answers_429_with_retry_after(start_server: StartServer) -> None:
    server = start_server(
        {"SLUICE_RATE_LIMIT_PER_SOURCE": "5", "SLUICE_RATE_LIMIT_BURST": "5", "SLUICE_WORKERS": "1"}
    )
    delta = CounterDelta(server)
    assert_success(server.post("/v1/batch", {"batch": [call("track") for _ in range(5)]}))
    throttled = call("track")
    res = server.post("/v1/track", throttled)
    assert_error(res, 429, "rate_limited")
    retry_after = int(res.headers["retry-after"])
    assert 1 <= retry_after <= 2
    assert res.headers["x-ratelimit-reset"] == res.headers["retry-after"]
    # Other sources have their own bucket.
    assert_success(server.post("/v1/track", call("track"), key=OTHER_KEY))
    delta.settle()
    assert delta[("web", "throttled")] == 1
    assert delta[("web", "stored")] == 5
    # After the wait it is accepted (once).
    time.sleep(retry_after)
    res, stored = send(server, "/v1/track", throttled)
    assert_success(res)
    assert [e.message_id for e in stored] == [throttled["messageId"]]


def test_rate_limit_holds_across_worker_processes(start_server: StartServer) -> None:
    """The limit is per source, whichever worker process a request lands on."""
    server = start_server(
        {"SLUICE_RATE_LIMIT_PER_SOURCE": "5", "SLUICE_RATE_LIMIT_BURST": "5", "SLUICE_WORKERS": "2"}
    )
    started = time.monotonic()
    statuses = [server.post("/v1/track", call("track")).status for _ in range(20)]
    elapsed = time.monotonic() - started
    assert set(statuses) == {200, 429}
    allowed = 5 + 5 * elapsed  # the burst, plus what refilled while sending
    assert statuses.count(200) <= allowed + 1, statuses


def test_overload_answers_429_with_retry_after(start_server: StartServer) -> None:
    server = start_server({"SLUICE_MAX_PENDING_EVENTS": "-1"})  # always over the limit
    res, stored = send(server, "/v1/batch", {"batch": [call("track")]})
    assert_error(res, 429, "overloaded")
    assert int(res.headers["retry-after"]) >= 1
    assert stored == []


# --- per-item validation -----------------------------------------------------------------------
def test_bad_items_are_rejected_alone(server: SluiceServer) -> None:
    marker = new_id()
    good = [call(kind) for kind in CALL_FIELDS]
    bad: list[tuple[RejectReason, Any]] = [
        (RejectReason.NO_USER_ANON_ID, {"type": "identify", "traits": {"m": marker}}),
        (RejectReason.MISSING_EVENT, {"type": "track", "userId": "u", "m": marker}),
        (RejectReason.MISSING_GROUP_ID, {"type": "group", "userId": "u", "m": marker}),
        (RejectReason.MISSING_PREVIOUS_ID, {"type": "alias", "userId": "u", "m": marker}),
        (RejectReason.MISSING_USER_ID, {"type": "alias", "previousId": "p", "m": marker}),
        (RejectReason.INVALID_TYPE, {"type": "purchase", "userId": "u", "m": marker}),
        (RejectReason.NOT_AN_OBJECT, f"not an object {marker}"),
        (RejectReason.INVALID_MESSAGE_ID, call("track", messageId="m" * 101, m=marker)),
        (RejectReason.INVALID_FIELD, call("track", properties=[marker])),
        (RejectReason.MESSAGE_TOO_LARGE,
         call("track", properties={"m": marker, "text": "x" * MAX_MESSAGE_BYTES})),
    ]  # fmt: skip
    items: list[Any] = []
    for index, (_, item) in enumerate(bad):
        items.append(item)
        items.append(good[index % len(good)] if index < len(good) else call("page"))
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/batch", {"batch": items})
    assert_success(res)
    good_ids = [i["messageId"] for i in items[1::2]]
    assert [e.message_id for e in stored] == good_ids
    delta.settle()
    assert delta[("web", "received")] == len(items)
    assert delta[("web", "stored")] == len(good_ids)
    for reason, _ in bad:
        assert delta[("web", f"rejected:{reason}")] == 1, reason
    kept = [r for r in server.store.rejections(100, "web") if marker.encode() in r.payload]
    assert sorted(r.reason for r in kept) == sorted(reason.value for reason, _ in bad)
    for rejection in kept:
        assert rejection.detail
        assert len(rejection.payload) <= MAX_MESSAGE_BYTES
        assert abs(rejection.received_at_ms - time.time() * 1000) < 60_000


def test_items_beyond_the_batch_limit_are_rejected(server: SluiceServer) -> None:
    items = [call("track") for _ in range(MAX_BATCH_ITEMS + 3)]
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/batch", {"batch": items})
    assert_success(res)
    assert [e.message_id for e in stored] == [i["messageId"] for i in items[:MAX_BATCH_ITEMS]]
    delta.settle()
    assert delta[("web", f"rejected:{RejectReason.TOO_MANY_ITEMS}")] == 3
    over = {i["messageId"] for i in items[MAX_BATCH_ITEMS:]}
    kept = server.store.rejections(10, "web")[:3]
    assert {payload_of(r.payload)["messageId"] for r in kept} == over


def payload_of(raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.json.decode(raw)
    return result


def test_single_call_rejection_still_answers_200(server: SluiceServer) -> None:
    """Semantic problems are Segment's 200-and-drop, not a 4xx the client would act on."""
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/track", {"userId": "u"})
    assert_success(res)
    assert stored == []
    delta.settle()
    assert delta[("web", f"rejected:{RejectReason.MISSING_EVENT}")] == 1


# --- normalisation as stored -------------------------------------------------------------------
def test_envelope_fields_are_merged_into_items(server: SluiceServer) -> None:
    plain = call("track")
    own = call(
        "identify",
        context={"locale": "fr-FR", "page": {"path": "/"}},
        integrations={"Amplitude": False},
        sentAt="2024-01-01T00:00:09.000Z",
    )
    body = {
        "batch": [plain, own],
        "sentAt": "2024-01-01T00:00:10.000Z",
        "context": {"locale": "en-US", "library": {"name": "analytics-node-next"}},
        "integrations": {"All": True, "Amplitude": True},
    }
    res, stored = send(server, "/v1/batch", body)
    assert_success(res)
    first, second = (payload(e) for e in stored)
    assert first["context"] == {"locale": "en-US", "library": {"name": "analytics-node-next"}}
    assert first["integrations"] == {"All": True, "Amplitude": True}
    assert first["sentAt"] == "2024-01-01T00:00:10.000Z"
    assert second["context"] == {
        "locale": "fr-FR",
        "library": {"name": "analytics-node-next"},
        "page": {"path": "/"},
    }
    assert second["integrations"] == {"All": True, "Amplitude": False}
    assert second["sentAt"] == "2024-01-01T00:00:09.000Z"


def test_message_id_is_kept_or_generated(server: SluiceServer) -> None:
    given = call("track")
    missing = call("track")
    del missing["messageId"]
    res, stored = send(server, "/v1/batch", {"batch": [given, missing]})
    assert_success(res)
    assert stored[0].message_id == given["messageId"]
    generated = stored[1].message_id
    assert uuid.UUID(generated).version == 4
    assert payload(stored[1])["messageId"] == generated


def test_received_at_is_the_server_clock(server: SluiceServer) -> None:
    before = int(time.time() * 1000)
    res, stored = send(server, "/v1/track", call("track"))
    after = int(time.time() * 1000)
    assert_success(res)
    event = stored[0]
    assert before - 5 <= event.received_at_ms <= after + 5
    assert payload(event)["receivedAt"] == format_ms(event.received_at_ms)


def test_timestamps_are_normalised_and_skew_corrected(server: SluiceServer) -> None:
    item = call(
        "track",
        timestamp="2024-03-10T12:00:00.123456+02:00",
        sentAt="2024-03-10T12:00:04.000+02:00",
    )
    res, stored = send(server, "/v1/t", item)
    assert_success(res)
    event = stored[0]
    stored_payload = payload(event)
    assert stored_payload["originalTimestamp"] == "2024-03-10T10:00:00.123Z"
    assert stored_payload["sentAt"] == "2024-03-10T10:00:04.000Z"
    skew = 4000 - 123
    assert stored_payload["timestamp"] == format_ms(event.received_at_ms - skew)
    assert stored_payload["receivedAt"] == format_ms(event.received_at_ms)


def test_envelope_sent_at_corrects_every_item(server: SluiceServer) -> None:
    items = [
        call("track", timestamp="2024-03-10T10:00:00.000Z"),
        call("page", timestamp="2024-03-10T10:00:01.500Z"),
    ]
    body = {"batch": items, "sentAt": "2024-03-10T10:00:02.250+00:00"}
    res, stored = send(server, "/v1/batch", body)
    assert_success(res)
    for event, skew in zip(stored, (2250, 750), strict=True):
        stored_payload = payload(event)
        assert stored_payload["timestamp"] == format_ms(event.received_at_ms - skew)
        assert stored_payload["sentAt"] == "2024-03-10T10:00:02.250Z"


def test_no_sent_at_means_no_correction(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/t", call("track", timestamp="2024-03-10T10:00:00-05:00"))
    assert_success(res)
    stored_payload = payload(stored[0])
    assert stored_payload["originalTimestamp"] == "2024-03-10T15:00:00.000Z"
    assert stored_payload["timestamp"] == "2024-03-10T15:00:00.000Z"
    assert "sentAt" not in stored_payload


def test_no_timestamp_means_received_at(server: SluiceServer) -> None:
    res, stored = send(server, "/v1/t", call("track", sentAt="2024-03-10T10:00:00Z"))
    assert_success(res)
    stored_payload = payload(stored[0])
    assert stored_payload["timestamp"] == stored_payload["receivedAt"]
    assert parse_ms(stored_payload["timestamp"]) == stored[0].received_at_ms
    assert "originalTimestamp" not in stored_payload


def test_unknown_fields_are_preserved(server: SluiceServer) -> None:
    extras = {
        "_metadata": {"bundled": ["Segment.io", "Mixpanel"], "unbundled": ["Amplitude"]},
        "category": "Docs",
        "channel": "browser",
        "customTopLevel": {"nested": [1, 2.5, None, True]},
        "version": 2,
    }
    context = {
        "consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}},
        "externalIds": [{"id": "x@example.com", "type": "email", "collection": "users"}],
        "traits": {"email": "x@example.com"},
    }
    item = call("page", context=context, properties={"url": "https://e.example/é"}, **extras)
    res, stored = send(server, "/v1/p", item)
    assert_success(res)
    stored_payload = payload(stored[0])
    for key, value in extras.items():
        assert stored_payload[key] == value
    assert stored_payload["context"] == context
    assert stored_payload["properties"] == {"url": "https://e.example/é"}


@pytest.mark.parametrize(
    ("path", "make_body"),
    [
        ("/v1/track", lambda item: {**item, "writeKey": WRITE_KEY}),
        ("/v1/batch", lambda item: {"batch": [item], "writeKey": WRITE_KEY}),
        ("/v1/batch", lambda item: {"batch": [{**item, "writeKey": WRITE_KEY}]}),
    ],
    ids=["single", "envelope", "item"],
)
def test_write_key_is_not_stored(server: SluiceServer, path: str, make_body: Any) -> None:
    res, stored = send(server, path, make_body(call("track")), key=None)
    assert_success(res)
    assert "writeKey" not in payload(stored[0])
    assert WRITE_KEY.encode() not in stored[0].payload


def test_numeric_ids_are_stored_as_strings(server: SluiceServer) -> None:
    item = call("group", userId=12345, anonymousId=6.0, groupId=42)
    res, stored = send(server, "/v1/g", item)
    assert_success(res)
    stored_payload = payload(stored[0])
    assert (stored_payload["userId"], stored_payload["anonymousId"]) == ("12345", "6")
    assert stored_payload["groupId"] == "42"


IP_CASES = [
    ("analytics.js", {"library": {"name": "analytics.js", "version": "npm:next-1.70.0"}},
     "127.0.0.1"),
    ("context.direct", {"direct": True}, "127.0.0.1"),
    ("analytics-python", {"library": {"name": "analytics-python", "version": "2.3.4"}}, None),
    ("no library", {"locale": "en"}, None),
    ("client value kept", {"library": {"name": "analytics.js"}, "ip": "198.51.100.4"},
     "198.51.100.4"),
    ("opt-out kept", {"direct": True, "ip": "0.0.0.0"}, "0.0.0.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("context", "expected"),
    [case[1:] for case in IP_CASES],
    ids=[case[0] for case in IP_CASES],
)
def test_context_ip(server: SluiceServer, context: dict[str, Any], expected: str | None) -> None:
    res, stored = send(server, "/v1/t", call("track", context=context))
    assert_success(res)
    assert payload(stored[0])["context"].get("ip") == expected


def test_forwarded_for_is_ignored_from_an_untrusted_peer(server: SluiceServer) -> None:
    item = call("track", context={"direct": True})
    res, stored = send(server, "/v1/t", item, headers={"X-Forwarded-For": "203.0.113.9"})
    assert_success(res)
    assert payload(stored[0])["context"]["ip"] == "127.0.0.1"


@pytest.fixture(scope="module")
def proxied_server(start_module_server: StartServer) -> SluiceServer:
    return start_module_server({"SLUICE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("203.0.113.9, 10.1.2.3", "203.0.113.9"),
        (None, "127.0.0.1"),
    ],
    ids=["one-hop", "rightmost-untrusted", "past-trusted-proxies", "no-header"],
)
def test_forwarded_for_from_a_trusted_proxy(
    proxied_server: SluiceServer, forwarded_for: str | None, expected: str
) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    body = {"batch": [call("track", context={"library": {"name": "analytics.js"}})]}
    res, stored = send(proxied_server, "/v1/b", body, headers=headers)
    assert_success(res)
    assert payload(stored[0])["context"]["ip"] == expected


# --- deduplication -----------------------------------------------------------------------------
def test_duplicate_message_ids_in_one_batch_are_stored_once(server: SluiceServer) -> None:
    item = call("track")
    delta = CounterDelta(server)
    res, stored = send(server, "/v1/batch", {"batch": [item, dict(item), dict(item)]})
    assert_success(res)
    assert [e.message_id for e in stored] == [item["messageId"]]
    delta.settle()
    assert delta[("web", "duplicates")] == 2
    assert delta[("web", "stored")] == 1


def test_duplicate_message_ids_across_requests_are_stored_once(server: SluiceServer) -> None:
    item = call("track")
    delta = CounterDelta(server)
    res1, stored1 = send(server, "/v1/track", item)
    res2, stored2 = send(
        server, "/v1/batch", {"batch": [dict(item)]}, headers={"X-Retry-Count": "1"}
    )
    assert_success(res1)
    assert_success(res2)
    assert [e.message_id for e in stored1] == [item["messageId"]]
    assert stored2 == []
    delta.settle()
    assert delta[("web", "duplicates")] == 1


def test_duplicates_are_per_workspace_not_per_source(server: SluiceServer) -> None:
    item = call("track")
    res1, stored1 = send(server, "/v1/track", item)
    res2, stored2 = send(server, "/v1/track", dict(item), key=OTHER_KEY)
    assert_success(res1)
    assert_success(res2)
    assert len(stored1) == 1
    assert stored2 == []


# --- CORS --------------------------------------------------------------------------------------
ORIGIN = "https://shop.example.com"


@pytest.mark.parametrize("path", ["/v1/t", "/v1/batch", "/v1/b", "/v1/m", "/v1/track"])
def test_cors_preflight(server: SluiceServer, path: str) -> None:
    requested = "content-type, authorization, x-retry-count, x-custom"
    res = server.request(
        "OPTIONS",
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert 200 <= res.status < 300
    assert res.headers["access-control-allow-origin"] == ORIGIN
    assert res.headers["access-control-allow-credentials"] == "true"
    assert "POST" in res.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in res.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization", "x-retry-count", "x-custom"} <= allowed


def test_cors_preflight_without_requested_headers_allows_the_defaults(
    server: SluiceServer,
) -> None:
    res = server.request("OPTIONS", "/v1/t", headers={"Origin": ORIGIN})
    assert 200 <= res.status < 300
    allowed = {h.strip().lower() for h in res.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization", "x-retry-count"} <= allowed


def test_cors_on_posts_and_errors(server: SluiceServer) -> None:
    ok = server.post("/v1/t", call("track"), headers={"Origin": ORIGIN})
    assert_success(ok)
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["access-control-allow-credentials"] == "true"
    denied = server.post("/v1/t", call("track"), key=UNKNOWN_KEY, headers={"Origin": ORIGIN})
    assert denied.status == 401
    assert denied.headers["access-control-allow-origin"] == ORIGIN
    no_origin = server.post("/v1/t", call("track"))
    assert no_origin.headers["access-control-allow-origin"] == "*"
