"""`normalize()`: one incoming item becomes the event Segment would have stored, or a rejection."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from sluice.spec.calls import CALL_TYPES, SHORT_FORMS, RejectReason
from sluice.spec.normalize import Envelope, Rejected, make_envelope, normalize
from sluice.spec.timestamps import format_ms, parse_ms

NOW = 1_704_164_645_000  # 2024-01-02T03:04:05.000Z
NOW_ISO = "2024-01-02T03:04:05.000Z"


def envelope(**kwargs: Any) -> Envelope:
    return make_envelope(NOW, **kwargs)


def accepted(item: dict[str, Any], env: Envelope | None = None, path: str | None = None) -> dict:
    result = normalize(item, env or envelope(), path)
    assert result is None, result
    return item


def rejected(item: Any, path: str | None = None) -> Rejected:
    result = normalize(item, envelope(), path)
    assert isinstance(result, Rejected)
    return result


# --- validation --------------------------------------------------------------------------------
REJECTIONS = [
    ("not an object", [1, 2], None, RejectReason.NOT_AN_OBJECT),
    ("string item", "track", None, RejectReason.NOT_AN_OBJECT),
    ("no type in a batch", {"userId": "u"}, None, RejectReason.INVALID_TYPE),
    ("unknown type", {"type": "purchase", "userId": "u"}, None, RejectReason.INVALID_TYPE),
    ("type of wrong case", {"type": "Track", "userId": "u", "event": "e"}, None,
     RejectReason.INVALID_TYPE),
    ("no ids", {"type": "identify", "traits": {}}, None, RejectReason.NO_USER_ANON_ID),
    ("empty ids", {"type": "page", "userId": "", "anonymousId": ""}, None,
     RejectReason.NO_USER_ANON_ID),
    ("null ids", {"type": "screen", "userId": None, "anonymousId": None}, None,
     RejectReason.NO_USER_ANON_ID),
    ("track without event", {"type": "track", "userId": "u"}, None, RejectReason.MISSING_EVENT),
    ("track with empty event", {"type": "track", "userId": "u", "event": ""}, None,
     RejectReason.MISSING_EVENT),
    ("track with numeric event", {"type": "track", "userId": "u", "event": 5}, None,
     RejectReason.MISSING_EVENT),
    ("track from the path without event", {"userId": "u"}, "track", RejectReason.MISSING_EVENT),
    ("group without groupId", {"type": "group", "userId": "u"}, None,
     RejectReason.MISSING_GROUP_ID),
    ("alias without previousId", {"type": "alias", "userId": "u"}, None,
     RejectReason.MISSING_PREVIOUS_ID),
    ("alias without userId", {"type": "alias", "previousId": "p", "anonymousId": "a"}, None,
     RejectReason.MISSING_USER_ID),
    ("boolean userId", {"type": "identify", "userId": True}, None, RejectReason.INVALID_FIELD),
    ("object anonymousId", {"type": "identify", "anonymousId": {"a": 1}}, None,
     RejectReason.INVALID_FIELD),
    ("properties not an object", {"type": "track", "userId": "u", "event": "e",
                                  "properties": [1]}, None, RejectReason.INVALID_FIELD),
    ("traits not an object", {"type": "identify", "userId": "u", "traits": "vip"}, None,
     RejectReason.INVALID_FIELD),
    ("context not an object", {"type": "identify", "userId": "u", "context": "x"}, None,
     RejectReason.INVALID_FIELD),
    ("integrations not an object", {"type": "identify", "userId": "u", "integrations": []}, None,
     RejectReason.INVALID_FIELD),
    ("messageId over 100 characters", {"type": "identify", "userId": "u",
                                       "messageId": "m" * 101}, None,
     RejectReason.INVALID_MESSAGE_ID),
    ("boolean messageId", {"type": "identify", "userId": "u", "messageId": True}, None,
     RejectReason.INVALID_MESSAGE_ID),
]  # fmt: skip


@pytest.mark.parametrize(("sent", "kept"), [(7, "7"), (7.0, "7"), (1.5, "1.5")])
def test_a_numeric_message_id_becomes_a_string_as_numeric_user_ids_do(sent: Any, kept: str) -> None:
    item: dict[str, Any] = {"type": "identify", "userId": "u", "messageId": sent}
    assert normalize(item, make_envelope(0)) is None
    assert item["messageId"] == kept


@pytest.mark.parametrize(
    ("item", "path", "reason"),
    [(item, path, reason) for _, item, path, reason in REJECTIONS],
    ids=[label for label, *_ in REJECTIONS],
)
def test_rejections(item: Any, path: str | None, reason: RejectReason) -> None:
    result = rejected(item, path)
    assert result.reason is reason
    assert result.detail


VALID = [
    ("identify with userId", {"type": "identify", "userId": "u"}),
    ("identify with anonymousId", {"type": "identify", "anonymousId": "a"}),
    ("track", {"type": "track", "anonymousId": "a", "event": "Signed Up"}),
    ("page without name", {"type": "page", "userId": "u"}),
    ("screen", {"type": "screen", "userId": "u", "name": "Home"}),
    ("group", {"type": "group", "userId": "u", "groupId": "g"}),
    ("alias", {"type": "alias", "userId": "u", "previousId": "p"}),
    ("messageId of exactly 100", {"type": "identify", "userId": "u", "messageId": "m" * 100}),
    ("empty userId beside anonymousId", {"type": "identify", "userId": "", "anonymousId": "a"}),
    ("null properties", {"type": "track", "userId": "u", "event": "e", "properties": None}),
]


@pytest.mark.parametrize("item", [i for _, i in VALID], ids=[label for label, _ in VALID])
def test_valid_items(item: dict[str, Any]) -> None:
    accepted(copy.deepcopy(item))


@pytest.mark.parametrize(
    ("path", "body_type"),
    [(call, "identify" if call != "identify" else "track") for call in sorted(CALL_TYPES)],
    ids=sorted(CALL_TYPES),
)
def test_type_comes_from_the_path(path: str, body_type: str) -> None:
    item = {
        "type": body_type,
        "userId": "u",
        "event": "e",
        "groupId": "g",
        "previousId": "p",
    }
    assert accepted(item, path=path)["type"] == path


def test_short_forms_cover_every_call() -> None:
    assert SHORT_FORMS == {"i": "identify", "t": "track", "p": "page", "s": "screen",
                           "g": "group", "a": "alias"}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12345, "12345"), (12.0, "12"), (1.5, "1.5"), (0, "0"), ("007", "007")],
    ids=["int", "integral-float", "float", "zero", "string-kept"],
)
def test_numeric_ids_become_strings(value: object, expected: str) -> None:
    item = accepted({"type": "group", "userId": value, "anonymousId": value, "groupId": value})
    assert (item["userId"], item["anonymousId"], item["groupId"]) == (expected,) * 3


def test_numeric_alias_ids_become_strings() -> None:
    item = accepted({"type": "alias", "userId": 2, "previousId": 1})
    assert (item["userId"], item["previousId"]) == ("2", "1")


# --- messageId ---------------------------------------------------------------------------------
def test_message_id_is_kept() -> None:
    item = accepted({"type": "identify", "userId": "u", "messageId": "ajs-next-1-abc"})
    assert item["messageId"] == "ajs-next-1-abc"


@pytest.mark.parametrize("given", [None, ""], ids=["absent-null", "empty"])
def test_message_id_is_generated(given: str | None) -> None:
    item = accepted({"type": "identify", "userId": "u", "messageId": given})
    assert uuid.UUID(item["messageId"]).version == 4
    other = accepted({"type": "identify", "userId": "u"})
    assert other["messageId"] != item["messageId"]


# --- envelope merge ----------------------------------------------------------------------------
def test_envelope_context_and_integrations_are_merged_item_wins() -> None:
    env = envelope(
        context={"locale": "en-US", "app": {"name": "Shop"}, "library": {"name": "envlib"}},
        integrations={"All": False, "Amplitude": True},
    )
    item = accepted(
        {
            "type": "track",
            "userId": "u",
            "event": "e",
            "context": {"locale": "fr-FR", "page": {"path": "/"}},
            "integrations": {"Amplitude": False, "Mixpanel": True},
        },
        env,
    )
    assert item["context"] == {
        "locale": "fr-FR",
        "app": {"name": "Shop"},
        "library": {"name": "envlib"},
        "page": {"path": "/"},
    }
    assert item["integrations"] == {"All": False, "Amplitude": False, "Mixpanel": True}


def test_envelope_context_is_applied_to_an_item_without_one() -> None:
    env = envelope(context={"locale": "en-US"}, integrations={"Segment.io": True})
    item = accepted({"type": "identify", "userId": "u"}, env)
    assert item["context"] == {"locale": "en-US"}
    assert item["integrations"] == {"Segment.io": True}


def test_envelope_objects_are_not_shared_between_items() -> None:
    env = envelope(context={"locale": "en-US"}, integrations={"All": True})
    first = accepted({"type": "identify", "userId": "u"}, env)
    second = accepted({"type": "identify", "userId": "v"}, env)
    first["context"]["locale"] = "changed"
    assert second["context"] == {"locale": "en-US"}
    assert env.context == {"locale": "en-US"}


def test_no_context_or_integrations_are_added_when_none_is_given() -> None:
    item = accepted({"type": "identify", "userId": "u"})
    assert "context" not in item
    assert "integrations" not in item


# --- timestamps --------------------------------------------------------------------------------
TIMES = [
    # label, item timestamp, item sentAt, envelope sentAt, originalTimestamp, timestamp, sentAt
    ("skew corrected", "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:02.500Z", None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:04:02.500Z", "2024-01-02T03:00:02.500Z"),
    ("device clock ahead", "2024-01-02T05:00:00.000Z", "2024-01-02T05:00:01.000Z", None,
     "2024-01-02T05:00:00.000Z", "2024-01-02T03:04:04.000Z", "2024-01-02T05:00:01.000Z"),
    ("envelope sentAt", "2024-01-02T03:04:00.100Z", None, "2024-01-02T03:04:01.000Z",
     "2024-01-02T03:04:00.100Z", "2024-01-02T03:04:04.100Z", "2024-01-02T03:04:01.000Z"),
    ("item sentAt beats envelope", "2024-01-02T03:04:00.000Z", "2024-01-02T03:04:03.000Z",
     "2024-01-02T03:04:01.000Z", "2024-01-02T03:04:00.000Z", "2024-01-02T03:04:02.000Z",
     "2024-01-02T03:04:03.000Z"),
    ("offsets normalised", "2024-01-02T05:04:00.123456+02:00", "2024-01-02T05:04:01+02:00",
     None, "2024-01-02T03:04:00.123Z", "2024-01-02T03:04:04.123Z", "2024-01-02T03:04:01.000Z"),
    ("analytics-python format", "2024-01-02T03:04:00.250+00:00", None,
     "2024-01-02T03:04:00.750123+00:00", "2024-01-02T03:04:00.250Z", "2024-01-02T03:04:04.500Z",
     "2024-01-02T03:04:00.750Z"),
    ("no sentAt: no correction", "2023-12-31T23:59:59.999-01:00", None, None,
     "2024-01-01T00:59:59.999Z", "2024-01-01T00:59:59.999Z", None),
    ("no timestamp: receivedAt", None, "2024-01-02T03:04:00.000Z", None,
     None, NOW_ISO, "2024-01-02T03:04:00.000Z"),
    ("unparseable timestamp kept as original", "last tuesday", None, None,
     "last tuesday", NOW_ISO, None),
    ("unparseable sentAt: no correction", "2024-01-02T03:00:00Z", "soon", None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", "soon"),
    # RFC 3339 forms fromisoformat refuses: lower-case t/z, the leap second (its minute's last ms).
    ("lower-case t and z", "2024-01-02t03:00:00z", "2024-01-02t03:00:02.500z", None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:04:02.500Z", "2024-01-02T03:00:02.500Z"),
    ("lower-case envelope sentAt", "2024-01-02T03:04:00.100Z", None, "2024-01-02t03:04:01z",
     "2024-01-02T03:04:00.100Z", "2024-01-02T03:04:04.100Z", "2024-01-02T03:04:01.000Z"),
    ("leap second timestamp", "2016-12-31T23:59:60Z", None, None,
     "2016-12-31T23:59:59.999Z", "2016-12-31T23:59:59.999Z", None),
    ("leap second sentAt", "2016-12-31T23:59:59.000Z", "2016-12-31T23:59:60.000Z", None,
     "2016-12-31T23:59:59.000Z", "2024-01-02T03:04:04.001Z", "2016-12-31T23:59:59.999Z"),
    ("offset +05", "2024-01-02T08:00:00+05", None, None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", None),
    # A correction outside years 1-9999 makes timestamp receivedAt, and never raises.
    ("sentAt 9999-12-31: receivedAt", "2024-01-02T03:00:00Z", "9999-12-31T23:59:59Z", None,
     "2024-01-02T03:00:00.000Z", NOW_ISO, "9999-12-31T23:59:59.000Z"),
    ("envelope sentAt 9999-12-31: receivedAt", "2024-01-02T03:00:00Z", None,
     "9999-12-31T23:59:59Z", "2024-01-02T03:00:00.000Z", NOW_ISO, "9999-12-31T23:59:59.000Z"),
    ("correction before year 1: receivedAt", "0001-01-01T00:00:00Z", "2024-01-02T03:04:06Z",
     None, "0001-01-01T00:00:00.000Z", NOW_ISO, "2024-01-02T03:04:06.000Z"),
    ("correction after year 9999: receivedAt", "9999-12-31T23:59:59.999Z",
     "2024-01-02T03:04:04Z", None, "9999-12-31T23:59:59.999Z", NOW_ISO,
     "2024-01-02T03:04:04.000Z"),
    ("correction on year 1's first ms", "0001-01-01T00:00:00Z", "2024-01-02T03:04:05Z", None,
     "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z", "2024-01-02T03:04:05.000Z"),
    # Not a time (numbers, outside years 1-9999 once in UTC): kept as sent, as Segment does.
    ("numeric timestamp kept as original", 1_704_164_640_000, None, None,
     1_704_164_640_000, NOW_ISO, None),
    ("numeric timestamp and sentAt", 1_704_164_640_000, 1_704_164_641_000, None,
     1_704_164_640_000, NOW_ISO, 1_704_164_641_000),
    ("numeric sentAt: no correction", "2024-01-02T03:00:00Z", 1_704_164_641_000, None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", 1_704_164_641_000),
    ("numeric envelope sentAt: no correction", "2024-01-02T03:00:00Z", None, 1_704_164_641,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", 1_704_164_641),
    ("empty sentAt: no correction", "2024-01-02T03:00:00Z", "", None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", ""),
    ("timestamp before year 1 in UTC", "0001-01-01T00:00:00+01:00", None, None,
     "0001-01-01T00:00:00+01:00", NOW_ISO, None),
    ("timestamp after year 9999 in UTC", "9999-12-31T23:59:59-01:00", "2024-01-02T03:04:01Z",
     None, "9999-12-31T23:59:59-01:00", NOW_ISO, "2024-01-02T03:04:01.000Z"),
    ("sentAt after year 9999 in UTC", "2024-01-02T03:00:00Z", "9999-12-31T23:59:59-01:00", None,
     "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", "9999-12-31T23:59:59-01:00"),
    ("envelope sentAt after year 9999 in UTC", "2024-01-02T03:00:00Z", None,
     "9999-12-31T23:59:59-01:00", "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z",
     "9999-12-31T23:59:59-01:00"),
    ("unreadable item sentAt beats a good envelope one", "2024-01-02T03:00:00Z", "soon",
     "2024-01-02T03:04:01Z", "2024-01-02T03:00:00.000Z", "2024-01-02T03:00:00.000Z", "soon"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "envelope_sent_at", "original", "corrected", "sent"),
    [case[1:] for case in TIMES],
    ids=[case[0] for case in TIMES],
)
def test_timestamps(
    timestamp: object,
    sent_at: object,
    envelope_sent_at: object,
    original: object,
    corrected: str,
    sent: object,
) -> None:
    item: dict[str, Any] = {"type": "identify", "userId": "u"}
    if timestamp is not None:
        item["timestamp"] = timestamp
    if sent_at is not None:
        item["sentAt"] = sent_at
    accepted(item, envelope(sent_at=envelope_sent_at))
    assert item["receivedAt"] == NOW_ISO
    assert item.get("originalTimestamp") == original
    assert item["timestamp"] == corrected
    assert item.get("sentAt") == sent


def test_skew_correction_is_exact_arithmetic() -> None:
    """The worked example of Segment's docs (analytics-clj#13), milliseconds and all."""
    received = parse_ms("2024-05-06T06:33:36.745Z")
    assert received is not None
    env = make_envelope(received, sent_at="2024-05-06T06:33:32.900Z")
    item = {"type": "track", "userId": "u", "event": "e", "timestamp": "2024-05-06T06:33:31.593Z"}
    assert normalize(item, env) is None
    assert item["timestamp"] == "2024-05-06T06:33:35.438Z"
    assert item["receivedAt"] == format_ms(received)


def test_original_timestamp_is_used_when_timestamp_is_absent() -> None:
    """Re-sent Segment output carries `originalTimestamp`, not `timestamp`."""
    item = accepted(
        {"type": "identify", "userId": "u", "originalTimestamp": "2024-01-02T03:04:00Z"},
        envelope(sent_at="2024-01-02T03:04:01Z"),
    )
    assert item["originalTimestamp"] == "2024-01-02T03:04:00.000Z"
    assert item["timestamp"] == "2024-01-02T03:04:04.000Z"


SENT_ATS = {
    "9999-12-31": "9999-12-31T23:59:59Z",
    "9999-12-31-last-ms": "9999-12-31T23:59:59.999Z",
    "year-1": "0001-01-01T00:00:00Z",
    "past-9999-in-utc": "9999-12-31T23:59:59-01:00",
    "before-1-in-utc": "0001-01-01T00:00:00+01:00",
    "leap-second": "2016-12-31T23:59:60Z",
    "garbage": "soon",
    "huge-number": 10**30,
    "list": ["2024-01-02"],
    "absent": None,
}
CLIENT_TIMESTAMPS = {
    "now": "2024-01-02T03:04:05Z",
    "year-1": "0001-01-01T00:00:00Z",
    "year-9999": "9999-12-31T23:59:59.999Z",
    "before-1-in-utc": "0001-01-01T00:00:00+01:00",
    "garbage": "x",
    "huge-number": -(10**30),
    "absent": None,
}
HOSTILE = [
    (f"sentAt={sent_label}-timestamp={ts_label}", sent_at, timestamp)
    for sent_label, sent_at in SENT_ATS.items()
    for ts_label, timestamp in CLIENT_TIMESTAMPS.items()
]


@pytest.mark.parametrize(
    ("sent_at", "timestamp"),
    [(sent_at, timestamp) for _, sent_at, timestamp in HOSTILE],
    ids=[label for label, _, _ in HOSTILE],
)
def test_a_request_never_raises_and_always_has_a_timestamp(sent_at: Any, timestamp: Any) -> None:
    """What a client sends as times never fails the request (it was a 500 for a sentAt in 9999)."""
    env = envelope(sent_at=sent_at)
    items = [{"type": "track", "userId": "u", "event": "e", "timestamp": timestamp},
             {"type": "track", "userId": "u", "event": "e", "timestamp": timestamp,
              "sentAt": sent_at}]  # fmt: skip
    for item in items:
        accepted(item, env)
        assert item["receivedAt"] == NOW_ISO
        moment = parse_ms(item["timestamp"])
        assert moment is not None
        assert format_ms(moment) == item["timestamp"]
        if parse_ms(sent_at) is None:
            assert item.get("sentAt") == sent_at  # kept as sent, for the record


# --- context.ip --------------------------------------------------------------------------------
IPS = [
    ("analytics.js", {"library": {"name": "analytics.js"}}, "1.2.3.4", "1.2.3.4"),
    ("analytics-next", {"library": {"name": "analytics-next"}}, "1.2.3.4", "1.2.3.4"),
    ("analytics-ios", {"library": {"name": "analytics-ios"}}, "1.2.3.4", "1.2.3.4"),
    ("context.direct", {"direct": True}, "1.2.3.4", "1.2.3.4"),
    ("analytics-python", {"library": {"name": "analytics-python"}}, "1.2.3.4", None),
    ("analytics-node", {"library": {"name": "analytics-node-next"}}, "1.2.3.4", None),
    ("no library", {}, "1.2.3.4", None),
    ("direct must be true", {"direct": "yes"}, "1.2.3.4", None),
    ("client ip kept", {"library": {"name": "analytics.js"}, "ip": "5.6.7.8"}, "1.2.3.4",
     "5.6.7.8"),
    ("opt-out kept", {"direct": True, "ip": "0.0.0.0"}, "1.2.3.4", "0.0.0.0"),
    ("IPv6 not collected", {"library": {"name": "analytics.js"}}, "2001:db8::1", None),
    ("no peer", {"library": {"name": "analytics.js"}}, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("context", "peer", "expected"),
    [case[1:] for case in IPS],
    ids=[case[0] for case in IPS],
)
def test_context_ip(context: dict[str, Any], peer: str | None, expected: str | None) -> None:
    item = accepted({"type": "identify", "userId": "u", "context": copy.deepcopy(context)},
                    envelope(peer_ip=peer))  # fmt: skip
    assert item["context"].get("ip") == expected


def test_context_ip_from_envelope_context() -> None:
    env = envelope(peer_ip="1.2.3.4", context={"library": {"name": "analytics.js"}})
    item = accepted({"type": "identify", "userId": "u"}, env)
    assert item["context"]["ip"] == "1.2.3.4"
    assert "ip" not in (env.context or {})


# --- pass-through ------------------------------------------------------------------------------
def test_unknown_fields_are_kept_and_write_key_is_dropped() -> None:
    extras = {
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "retryCount": 2},
        "category": "Docs",
        "channel": "browser",
        "options": {"x": 1},
        "customTopLevel": [1, {"a": None}],
        "version": 2,
    }
    context = {
        "consent": {"categoryPreferences": {"ads": False}},
        "externalIds": [{"id": "e", "type": "email"}],
        "protocols": {"omitted": []},
    }
    item = {
        "type": "page",
        "userId": "u",
        "name": "Home",
        "properties": {"path": "/", "nested": {"deep": [1, 2]}},
        "context": copy.deepcopy(context),
        "writeKey": "wk",
        **copy.deepcopy(extras),
    }
    accepted(item)
    assert "writeKey" not in item
    assert item["context"] == context
    assert item["properties"] == {"path": "/", "nested": {"deep": [1, 2]}}
    for key, value in extras.items():
        assert item[key] == value
