"""Hostile request bodies for the Tracking API, from a seeded random source.

Shared by tests/collector/test_ingest_fuzz.py (hypothesis draws the random source) and
bench/fuzz.py (100,000 requests by hand). Each body is a batch that mixes valid items (their
messageIds start with `good-`: every one of them must be stored when the answer is 200) with
items broken the ways clients and attackers break them: wrong types, odd numbers, broken strings,
NUL, deep nesting, huge values, absurd timestamps; and, sometimes, a mangled whole body.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 2**63, -(2**64), "", " ", "\u0000", "\ufffd", "\U0001f600", [], {},
    "1e999", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z", "2024-01-02t03:04:05z", "not a date", 1.7976931348623157e308,
]  # fmt: skip
RAW_NUMBERS = [b"1e999", b"-1e400", b"1" + b"0" * 400, b"1e308", b"-0", b"0.0000001e-400"]
RAW_STRINGS = [b'"\\ud83c"', b'"\\udc00"', b'"\xff\xfe"', b'"\xc3"', b'"a\\u0000b"', b'"\\\\ud83c"']
FIELDS = ["type", "userId", "anonymousId", "messageId", "event", "timestamp", "sentAt",
          "context", "properties", "traits", "integrations", "groupId", "previousId", "name",
          "originalTimestamp", "writeKey"]  # fmt: skip


def good_item(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["track", "identify", "page", "screen", "group", "alias"])
    item: dict[str, Any] = {"type": kind, "userId": f"u-{rng.randrange(100)}",
                            "messageId": f"good-{uuid.UUID(int=rng.getrandbits(128))}"}  # fmt: skip
    if kind == "track":
        item["event"] = rng.choice(["Order Completed", "Signed Up", "Ünïcødé 🎉", "a b"])
    if kind == "group":
        item["groupId"] = "g-1"
    if kind == "alias":
        item["previousId"] = "p-1"
    item["properties" if kind != "identify" else "traits"] = {
        "n": rng.randrange(-(10**6), 10**6), "f": rng.random(), "s": "x" * rng.randrange(50),
        "nested": {"a": [1, {"b": None}]},
    }  # fmt: skip
    return item


def _nested(rng: random.Random) -> bytes:
    levels = rng.choice([10, 63, 64, 65, 200, 900])
    return b"[" * levels + b"]" * levels


def bad_item(rng: random.Random) -> bytes:
    """One broken item, as raw JSON text (it may not be valid JSON on its own)."""
    item: dict[str, Any] = {"type": "track", "event": "E", "userId": "u",
                            "messageId": f"bad-{rng.getrandbits(64)}"}  # fmt: skip
    for _ in range(rng.randrange(1, 4)):
        item[rng.choice(FIELDS)] = rng.choice(ODD_VALUES)
    text = json.dumps(item).encode()
    choice = rng.randrange(6)
    if choice == 0:  # a raw number no double holds, in properties
        return text[:-1] + b',"properties":{"x":' + rng.choice(RAW_NUMBERS) + b"}}"
    if choice == 1:  # a broken string somewhere
        field = rng.choice([b"event", b"userId", b"messageId", b"properties"])
        value = rng.choice(RAW_STRINGS)
        if field == b"properties":
            value = b'{"s":' + value + b"}"
        return text[:-1] + b',"' + field + b'":' + value + b"}"
    if choice == 2:  # deep nesting
        return text[:-1] + b',"properties":{"x":' + _nested(rng) + b"}}"
    if choice == 3:  # not an object at all
        return rng.choice([b"1", b'"s"', b"null", b"[1]", b"1e999", b'"\\ud800"'])
    if choice == 4:  # huge string
        return text[:-1] + b',"properties":{"x":"' + b"y" * rng.choice([100, 70_000]) + b'"}}'
    return text  # odd values only


def request_body(rng: random.Random) -> tuple[bytes, list[str]]:
    """A batch body and the messageIds of its good items, in order."""
    items: list[bytes] = []
    good: list[str] = []
    for _ in range(rng.randrange(1, 12)):
        if rng.random() < 0.5:
            item = good_item(rng)
            good.append(item["messageId"])
            items.append(json.dumps(item).encode())
        else:
            items.append(bad_item(rng))
    body = b'{"batch":[' + b",".join(items) + b"]"
    if rng.random() < 0.2:
        body += b',"sentAt":' + json.dumps(rng.choice(ODD_VALUES)).encode()
    body += b"}"
    if rng.random() < 0.05:  # mangle the whole body: the answer may be 400, never 5xx
        at = rng.randrange(len(body))
        body = body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
        good = []
    return body, good
