"""Hostile input decoded as Segment's API decodes it: broken strings become U+FFFD, items no
consumer could use are refused one by one, and no input gets a 5xx or sinks its neighbours."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server import CounterDelta, SluiceServer, StartServer, seed_sources
from sluice.collector.sanitize import MAX_DEPTH, clean_body, depth, item_fault

FFFD = "\ufffd"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a":"ok"}', b'{"a":"ok"}'),
        (b'{"a":"caf\xc3\xa9"}', b'{"a":"caf\xc3\xa9"}'),
        (b'{"a":"\xff\xfe"}', '{"a":"\ufffd\ufffd"}'.encode()),
        (b'{"a":"cut \xf0\x9f"}', '{"a":"cut \ufffd"}'.encode()),
        (b'{"a":"\\ud83c"}', b'{"a":"\\ufffd"}'),
        (b'{"a":"\\udc00x"}', b'{"a":"\\ufffdx"}'),
        (b'{"a":"\\ud83c\\udf89"}', b'{"a":"\\ud83c\\udf89"}'),
        (b'{"a":"\\ud83c\\ud83c\\udf89"}', b'{"a":"\\ufffd\\ud83c\\udf89"}'),
        (b'{"a":"\\\\ud83c"}', b'{"a":"\\\\ud83c"}'),
        (b'{"a":"\\\\\\ud83c"}', b'{"a":"\\\\\\ufffd"}'),
        (b'{"a":"\\u00e9\\ud83c"}', b'{"a":"\\u00e9\\ufffd"}'),
    ],
    ids=[
        "ascii",
        "valid-utf8",
        "invalid-bytes",
        "cut-mid-character",
        "lone-high",
        "lone-low",
        "pair",
        "high-then-pair",
        "escaped-backslash",
        "escaped-backslash-then-lone",
        "other-escape-then-lone",
    ],
)
def test_clean_body_makes_valid_json_text(body: bytes, expected: bytes) -> None:
    cleaned = clean_body(body)
    assert cleaned == expected
    msgspec.json.decode(cleaned)  # decodes now
    cleaned.decode("utf-8")


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ('{"p":{"x":1e308}}', None),
        ('{"p":{"x":1e999}}', "number_out_of_range"),
        ('{"p":{"x":-1E+400}}', "number_out_of_range"),
        ('{"p":{"x":1' + "0" * 400 + "}}", "number_out_of_range"),
        ('{"p":{"x":"1e999 and 1' + "0" * 400 + '"}}', None),
        ('{"p":' + nested(MAX_DEPTH - 1) + "}", None),
        ('{"p":' + nested(MAX_DEPTH) + "}", "too_deep"),
        ('{"p":"' + "[" * 500 + '"}', None),
    ],
    ids=[
        "1e308",
        "1e999",
        "-1e400",
        "400-digits",
        "in-a-string",
        "deep-ok",
        "too-deep",
        "brackets",
    ],
)
def test_item_fault(item: str, reason: str | None) -> None:
    fault = item_fault(item.encode())
    assert (fault[0] if fault else None) == reason


def test_depth_skips_strings() -> None:
    assert depth(b'{"a":"[[[{{{\\"[","b":[[1]]}') == 3


def new_id() -> str:
    return f"hostile-{uuid.uuid4()}"


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Ok", "userId": "u1", "messageId": new_id(), **fields}


def stored(server: SluiceServer, message_id: str) -> dict[str, Any] | None:
    found = server.store.find_events(message_id)
    return msgspec.json.decode(found[0].payload) if found else None


def test_a_batch_of_hostile_items_stores_its_valid_neighbours(sluice_server: SluiceServer) -> None:
    good = [track() for _ in range(3)]
    big_number, deep = new_id(), new_id()
    broken_utf8, surrogate, broken_name = new_id(), new_id(), new_id()
    items = [
        json.dumps(good[0]).encode(),
        b'{"type":"track","event":"E","userId":"u","messageId":"%s","properties":{"x":1e999}}'
        % big_number.encode(),
        b'{"type":"track","event":"E","userId":"u","messageId":"%s","properties":{"x":"\xff"}}'
        % broken_utf8.encode(),
        json.dumps(good[1]).encode(),
        b'{"type":"track","event":"E","userId":"u","messageId":"%s","properties":{"x":"\\ud83c"}}'
        % surrogate.encode(),
        b'{"type":"track","event":"Bad \xc3","userId":"u","messageId":"%s"}' % broken_name.encode(),
        b'{"type":"track","event":"E","userId":"u","messageId":"%s","properties":{"x":%s}}'
        % (deep.encode(), nested(200).encode()),
        json.dumps(good[2]).encode(),
    ]
    body = b'{"batch":[' + b",".join(items) + b"]}"
    delta = CounterDelta(sluice_server)
    res = sluice_server.post("/v1/batch", body)
    assert res.status == 200, res.body
    delta.settle()
    assert delta[("web", "stored")] == 6
    assert delta[("web", "rejected:number_out_of_range")] == 1
    assert delta[("web", "rejected:too_deep")] == 1
    for item in good:
        assert stored(sluice_server, item["messageId"]) is not None
    assert stored(sluice_server, big_number) is None and stored(sluice_server, deep) is None
    assert stored(sluice_server, broken_utf8)["properties"]["x"] == FFFD  # type: ignore[index]
    assert stored(sluice_server, surrogate)["properties"]["x"] == FFFD  # type: ignore[index]
    assert stored(sluice_server, broken_name)["event"] == f"Bad {FFFD}"  # type: ignore[index]
    [event] = sluice_server.store.find_events(broken_name)
    assert event.event == f"Bad {FFFD}"


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_nesting_past_what_can_be_parsed_is_a_400_not_a_500(
    sluice_server: SluiceServer, path: str
) -> None:
    item = '{"type":"track","event":"E","userId":"u","properties":{"x":' + nested(3000) + "}}"
    body = item if path == "/v1/track" else '{"batch":[' + item + "]}"
    res = sluice_server.post(path, body.encode())
    assert res.status == 400, res.body
    assert res.json()["code"] == "too_deep"


@pytest.fixture(params=["sqlite", "postgres"])
def any_store_server(
    request: pytest.FixtureRequest, start_server: StartServer, tmp_path: Path
) -> SluiceServer:
    data_dir = tmp_path / "node"
    env = {"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "0"}
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        env["SLUICE_DATABASE_URL"] = url
    seed_sources(data_dir, database_url=url)
    return start_server(env, data_dir=data_dir)


def test_nul_in_ids_and_names_is_handled_per_item_on_both_backends(
    any_store_server: SluiceServer,
) -> None:
    server = any_store_server
    good, named = new_id(), new_id()
    body = {
        "batch": [
            track(messageId=f"{new_id()}\u0000x"),
            track(messageId=named, event="Nul\u0000Name"),
            track(messageId=good),
        ]
    }
    res = server.post("/v1/batch", body)
    assert res.status == 200, res.body
    assert stored(server, good) is not None
    [event] = server.store.find_events(named)
    assert event.event == f"Nul{FFFD}Name"
    assert msgspec.json.decode(event.payload)["event"] == "Nul\u0000Name"  # as sent
    [rejected] = server.store.rejections(5)
    assert (rejected.reason, rejected.detail) == ("invalid_message_id", "messageId contains NUL")


def test_a_truncated_gzip_body_says_so(sluice_server: SluiceServer) -> None:
    whole = gzip.compress(json.dumps(track()).encode())
    res = sluice_server.post("/v1/track", whole[: len(whole) // 2],
                             headers={"Content-Encoding": "gzip"})  # fmt: skip
    assert res.status == 400 and res.json()["code"] == "invalid_gzip"
    assert "truncated" in res.json()["message"]


def test_gzip_without_its_header_and_a_byte_order_mark_are_read(
    sluice_server: SluiceServer,
) -> None:
    zipped, marked = track(), track()
    res = sluice_server.post("/v1/track", gzip.compress(json.dumps(zipped).encode()))
    assert res.status == 200, res.body
    res = sluice_server.post("/v1/track", b"\xef\xbb\xbf" + json.dumps(marked).encode())
    assert res.status == 200, res.body
    assert stored(sluice_server, zipped["messageId"]) is not None
    assert stored(sluice_server, marked["messageId"]) is not None


def test_whole_request_refusals_are_counted_by_reason(sluice_server: SluiceServer) -> None:
    delta = CounterDelta(sluice_server)
    for _ in range(2):
        assert sluice_server.post("/v1/batch", b"{not json").status == 400
    delta.settle()
    assert delta[("web", "request_rejected:invalid_json")] == 2


def test_a_4_mb_batch_as_rudder_sends_it_is_stored(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})  # the default limits
    items = [track(properties={"blob": "x" * 30_000}) for _ in range(130)]
    body = json.dumps({"batch": items}).encode()
    assert 3_900_000 < len(body) < 4 * 1024 * 1024
    res = server.post("/v1/batch", body)
    assert res.status == 200, res.body
    assert stored(server, items[-1]["messageId"]) is not None


@pytest.mark.parametrize("kind", [[], {}, ["track"], {"a": 1}, 1, True])
def test_a_type_that_is_not_a_string_rejects_the_item_only(
    sluice_server: SluiceServer, kind: Any
) -> None:
    """Found by bench/fuzz.py: a list or object as `type` was a 500 for the whole batch."""
    good = track()
    res = sluice_server.post("/v1/batch", {"batch": [track(type=kind), good]})
    assert res.status == 200, res.body
    assert stored(sluice_server, good["messageId"]) is not None
