"""Amplitude: stored Segment events through the presets, sent to a recording server.

Expected bodies are derived by hand from Segment's action code and test snapshots
(segmentio/action-destinations, destinations/amplitude: logEventV2, logEvent, logPurchase,
identifyUser, groupIdentifyUser, mapUser, user-agent.ts, __tests__/amplitude.test.ts, and
actions-core's payload validation), not from Sluice's output. The differential suite
(tests/bridge/conformance/native.py) compares the bytes with Segment's code itself.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest

from destination_kit import deliver, presets_matching
from recorder import Recorded, Recorder, Reply
from sluice.destinations.amplitude import (
    GROUP_IDENTIFY_MAPPING,
    LOG_EVENT_MAPPING,
    LOG_PURCHASE_MAPPING,
    Amplitude,
    AmplitudeSettings,
    parse_user_agent,
)
from sluice.destinations.base import Mapped, Outcome, Verdict
from sluice.destinations.registry import load
from sluice.mapping import resolve

API_KEY = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
ANONYMOUS_ID = "6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11"
MS = 1709633730123  # 2024-03-05T10:15:30.123Z
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36"
)
PAGE = {
    "path": "/pricing",
    "referrer": "https://www.google.com/",
    "search": "?utm_source=google",
    "title": "Pricing",
    "url": "https://www.example.com/pricing?utm_source=google",
}
CAMPAIGN = {"name": "spring_sale", "source": "google", "medium": "cpc"}


def web(type_: str, **fields: Any) -> dict[str, Any]:
    """A call from analytics.js as Sluice stores it: camelCase, receivedAt, `…Z` timestamps."""
    return {
        "type": type_,
        "messageId": "ajs-next-1709633730123-5c4d3f9e",
        "anonymousId": ANONYMOUS_ID,
        "userId": "user-42",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.64.0"},
            "ip": "203.0.113.7",
            "locale": "en-US",
            "userAgent": CHROME_MAC,
            "page": dict(PAGE),
            "campaign": dict(CAMPAIGN),
        },
        "integrations": {},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
        **copy.deepcopy(fields),
    }


def ios_screen() -> dict[str, Any]:
    """A screen call from analytics-swift, with the session id the Amplitude plugin adds."""
    return {
        "type": "screen",
        "name": "Home",
        "properties": {"tab": "feed"},
        "messageId": "8C0A7E52-4F3B-4D8B-9E0A-2F0C7C3B1D11",
        "anonymousId": "E3B0C442-98FC-4C14-9AFB-F4C8996FB924",
        "userId": "user-42",
        "context": {
            "app": {"name": "Example", "version": "3.2.1", "build": "321",
                    "namespace": "com.example.app"},
            "device": {"id": "B1A2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D", "manufacturer": "Apple",
                       "model": "iPhone15,2", "type": "ios", "name": "iPhone"},
            "os": {"name": "iOS", "version": "17.4"},
            "network": {"carrier": "T-Mobile", "wifi": True, "cellular": False},
            "screen": {"width": 393, "height": 852, "density": 3},
            "library": {"name": "analytics-swift", "version": "1.5.0"},
            "locale": "en-US",
            "ip": "198.51.100.23",
        },
        "integrations": {"Actions Amplitude": {"session_id": 1709633700000}},
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
    }  # fmt: skip


def amplitude(**settings: Any) -> Amplitude:
    return Amplitude(Amplitude.parse_settings({"api_key": API_KEY, **settings}))


def preset_work(event: dict[str, Any]) -> list[tuple[str, str, Mapped]]:
    """(preset name, action, mapped) for every preset whose trigger matches the event."""
    return [(p.name, p.action, m) for p, m in presets_matching(Amplitude, event)]


def headers(got: Recorded) -> dict[str, str]:
    return {k: v for k, v in got.headers.items() if k not in TRANSPORT}


def form(got: Recorded) -> dict[str, Any]:
    """The form fields, with `identification` (JSON) decoded."""
    fields = {k: v[0] for k, v in parse_qs(got.body.decode(), strict_parsing=True).items()}
    return {k: msgspec.json.decode(v) if k == "identification" else v for k, v in fields.items()}


JSON_HEADERS = {"user-agent": "Segment (Actions)", "content-type": "application/json"}
FORM_HEADERS = {
    "user-agent": "Segment (Actions)",
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
}
# What the Mac Chrome user agent parses to: `os_version` is the browser's major version.
PARSED_UA = {"os_name": "Mac OS", "os_version": "122", "device_manufacturer": "Apple",
             "device_model": "Macintosh"}  # fmt: skip
SET_ONCE = {
    "initial_referrer": "https://www.google.com/",
    "initial_utm_source": "google",
    "initial_utm_medium": "cpc",
    "initial_utm_campaign": "spring_sale",
}
SET_ALWAYS = {
    "referrer": "https://www.google.com/",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "spring_sale",
}
ORDER = {
    "order_id": "50314b8e9bcf000000000000",
    "revenue": 25,
    "currency": "USD",
    "products": [{"productId": "507f1f77bcf86cd799439011", "sku": "G-32", "price": 18.99,
                  "quantity": 1}],
}  # fmt: skip
WEB_EVENT = {
    **PARSED_UA,
    "user_id": "user-42",
    "device_id": ANONYMOUS_ID,
    "language": "en-US",
    "ip": "203.0.113.7",
    "platform": "Web",  # analytics.js and no context.device.type
    "time": MS,
    "user_properties": {"$setOnce": SET_ONCE, "$set": SET_ALWAYS},
    "use_batch_endpoint": False,  # Segment leaves the field in every event
    "library": "analytics.js",  # Library Settings' default: the event's library name
}


def test_track_calls(recorder: Recorder) -> None:
    event = web("track", event="Checkout Started", properties=ORDER)
    work = preset_work(event)
    assert [(name, action) for name, action, _ in work] == [("Track Calls", "logEventV2")]
    requests = amplitude(endpoint=recorder.base_url).build("logEventV2", [work[0][2]])
    assert [r.message_ids for r in requests] == [[event["messageId"]]]

    (response,) = deliver(requests)

    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/2/httpapi", {})
    assert headers(got) == JSON_HEADERS
    # Log Event V2 drops the revenue fields but keeps the mapped products array.
    products = [{"price": 18.99, "quantity": 1, "productId": "507f1f77bcf86cd799439011"}]
    expected = {**WEB_EVENT, "event_type": "Checkout Started", "event_properties": ORDER,
                "products": products}  # fmt: skip
    assert got.json() == {"api_key": API_KEY, "events": [expected]}


def test_order_completed_calls(recorder: Recorder) -> None:
    """Log Purchase: the order with its revenue, then a "Product Purchased" event per product
    (its event properties are the mapped product), all in one request."""
    event = web("track", event="Order Completed", properties=ORDER)
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Order Completed Calls", "logPurchase")
    (request,) = amplitude(endpoint=recorder.base_url).build(action, [mapped])
    deliver([request])
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/2/httpapi")
    order = {**WEB_EVENT, "event_type": "Order Completed", "event_properties": ORDER,
             "revenue": 25, "revenueType": "Purchase"}  # fmt: skip
    product = {k: v for k, v in WEB_EVENT.items() if k not in PARSED_UA}
    bought = {"price": 18.99, "quantity": 1, "productId": "507f1f77bcf86cd799439011"}
    product |= {"event_type": "Product Purchased", "event_properties": bought}
    assert got.json() == {"api_key": API_KEY, "events": [order, product]}
    # Sent as Segment's code writes them: the order's fields first, the revenue before library.
    assert list(got.json()["events"][0])[-3:] == ["revenue", "revenueType", "library"]


def test_revenue_per_product() -> None:
    """With trackRevenuePerProduct, each product carries its price x quantity (insert ids get
    the event's index) and the order none."""
    event = web("track", event="Order Completed", messageId="order-1",
                properties={**ORDER, "products": [{"price": "2.5", "quantity": 2}]})  # fmt: skip
    mapping = {**LOG_PURCHASE_MAPPING, "trackRevenuePerProduct": True,
               "insert_id": {"@path": "$.messageId"}}  # fmt: skip
    mapped = Mapped("order-1", resolve(mapping, event), event)
    (request,) = amplitude().build("logPurchase", [mapped])
    order, product = msgspec.json.decode(request.body)["events"]
    assert "revenue" not in order and order["insert_id"] == "order-1"
    assert product["insert_id"] == "order-1-2"
    assert product["event_properties"] == {"price": 2.5, "quantity": 2}  # coerced, as ajv does
    assert (product["revenue"], product["revenueType"], product["quantity"]) == (5, "Purchase", 2)
    assert b'"revenue":5,' in request.body  # JavaScript's spelling of 5.0


def test_page_calls(recorder: Recorder) -> None:
    event = web("page", name="Pricing", properties={**PAGE, "name": "Pricing"})
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Page Calls", "logEventV2")
    deliver(amplitude(endpoint=recorder.base_url).build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/2/httpapi")
    expected = {
        **WEB_EVENT,
        "event_type": "Viewed Pricing",
        "event_properties": event["properties"],
    }
    assert got.json() == {"api_key": API_KEY, "events": [expected]}


def test_screen_calls_from_ios(recorder: Recorder) -> None:
    event = ios_screen()
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Screen Calls", "logEventV2")
    deliver(amplitude(endpoint=recorder.base_url).build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    assert got.json() == {
        "api_key": API_KEY,
        "events": [{
            "user_id": "user-42",
            "device_id": "B1A2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
            "event_type": "Viewed Home",
            "event_properties": {"tab": "feed"},
            "app_version": "3.2.1",
            "platform": "iOS",  # "ios" recased, as Segment does
            "os_name": "iOS",
            "os_version": "17.4",
            "device_manufacturer": "Apple",
            "device_model": "iPhone15,2",
            "carrier": "T-Mobile",
            "language": "en-US",
            "ip": "198.51.100.23",
            "idfv": "B1A2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
            "session_id": 1709633700000,
            "time": MS,
            "use_batch_endpoint": False,
            "library": "analytics-swift",
        }],
    }  # fmt: skip


def test_identify_calls(recorder: Recorder) -> None:
    traits = {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}
    event = web("identify", traits=traits)
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Identify Calls", "identifyUser")
    (request,) = amplitude(endpoint=recorder.base_url).build(action, [mapped])

    deliver([request])

    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/identify", {})
    assert headers(got) == FORM_HEADERS
    assert form(got) == {
        "api_key": API_KEY,
        "identification": {
            **PARSED_UA,
            "user_id": "user-42",
            "device_id": ANONYMOUS_ID,
            "user_properties": {**traits, "$set": SET_ALWAYS, "$setOnce": SET_ONCE},
            "language": "en-US",
            "platform": "Web",
            "library": "segment",
        },
        "options": "undefined",  # what URLSearchParams makes of Segment's undefined options
    }


def test_identify_without_campaign_keeps_traits_as_they_are() -> None:
    """amplitude.test.ts: "shouldnt append $ keys to user_properties if referrer/utm are not
    specified"."""
    event = web("identify", traits={"some-trait-key": "some-trait-value"})
    del event["context"]["campaign"], event["context"]["page"]
    ((_, action, mapped),) = preset_work(event)
    (request,) = amplitude().build(action, [mapped])
    assert request.url == "https://api2.amplitude.com/identify"
    identification = msgspec.json.decode(parse_qs(request.body.decode())["identification"][0])
    assert identification["user_properties"] == {"some-trait-key": "some-trait-value"}


def test_group_identify(recorder: Recorder) -> None:
    """Segment ships no Group preset (group type and value have no default): a subscription
    names them."""
    event = web("group", groupId="acme-inc", traits={"name": "Acme Inc", "plan": "enterprise"})
    assert preset_work(event) == []
    mapping = {**GROUP_IDENTIFY_MAPPING, "group_type": "company",
               "group_value": {"@path": "$.groupId"}}  # fmt: skip
    mapped = Mapped(event["messageId"], resolve(mapping, event), event)
    requests = amplitude(endpoint=recorder.base_url).build("groupIdentifyUser", [mapped])
    assert [r.message_ids for r in requests] == [[event["messageId"]]] * 2

    deliver(requests)

    user, group = recorder.wait_for(2)
    assert [(r.method, r.path) for r in (user, group)] == [
        ("POST", "/identify"),
        ("POST", "/groupidentify"),
    ]
    assert headers(user) == headers(group) == FORM_HEADERS
    assert form(user) == {
        "api_key": API_KEY,
        "identification": [{
            "device_id": ANONYMOUS_ID,
            "groups": {"company": "acme-inc"},
            "library": "segment",
            "time": MS,
            "user_id": "user-42",
            "user_properties": {"company": "acme-inc"},
        }],
        "options": "undefined",
    }  # fmt: skip
    assert form(group) == {
        "api_key": API_KEY,
        "identification": [{
            "group_properties": {"name": "Acme Inc", "plan": "enterprise"},
            "group_value": "acme-inc",
            "group_type": "company",
            "library": "segment",
        }],
        "options": "undefined",
    }  # fmt: skip
    unnamed = Mapped("m2", resolve(GROUP_IDENTIFY_MAPPING, event), event)
    with pytest.raises(ValueError, match="group_type"):
        amplitude().build("groupIdentifyUser", [unnamed])


def test_batches_endpoints_and_options(recorder: Recorder) -> None:
    events = [web("track", event=f"Step {i}", messageId=f"m{i}") for i in range(3)]
    (preset,) = [p for p in Amplitude.presets if p.name == "Track Calls"]
    mapped = [Mapped(e["messageId"], resolve(preset.mapping, e), e) for e in events]
    mapped[1] = Mapped("m1", {**mapped[1].payload, "use_batch_endpoint": True}, events[1])
    mapped[2] = Mapped("m2", {**mapped[2].payload, "min_id_length": 3}, events[2])
    requests = amplitude(endpoint=recorder.base_url).build("logEventV2", mapped)
    assert [(r.url.removeprefix(recorder.base_url), r.message_ids) for r in requests] == [
        ("/2/httpapi", ["m0"]),
        ("/batch", ["m1"]),
        ("/2/httpapi", ["m2"]),
    ]
    deliver(requests)
    bodies = [r.json() for r in recorder.wait_for(3)]
    assert [b["events"][0]["use_batch_endpoint"] for b in bodies] == [False, True, False]
    assert [b.get("options") for b in bodies] == [None, None, {"min_id_length": 3}]
    same = amplitude().build("logEventV2", [mapped[0], mapped[0], mapped[0]])
    assert len(same) == 1 and len(msgspec.json.decode(same[0].body)["events"]) == 3


def test_log_event(recorder: Recorder) -> None:
    """Log Event (the first version): UTM and referrer become `$set`/`$setOnce`, merged
    before the user's own properties."""
    event = web("track", event="Signed Up", traits={"plan": "pro"})
    mapping = {
        **{k: v for k, v in LOG_EVENT_MAPPING.items() if k not in ("setOnce", "setAlways")},
        "utm_properties": {"utm_source": {"@path": "$.context.campaign.source"}},
        "referrer": {"@path": "$.context.page.referrer"},
    }
    mapped = Mapped(event["messageId"], resolve(mapping, event), event)
    (request,) = amplitude(endpoint=recorder.base_url).build("logEvent", [mapped])
    deliver([request])
    (got,) = recorder.wait_for(1)
    assert got.path == "/2/httpapi"
    (sent,) = got.json()["events"]
    assert sent["user_properties"] == {
        "$set": {"utm_source": "google", "referrer": "https://www.google.com/"},
        "$setOnce": {"initial_utm_source": "google", "initial_referrer": "https://www.google.com/"},
        "plan": "pro",
    }
    assert list(sent["user_properties"]) == ["$set", "$setOnce", "plan"]


def test_map_user(recorder: Recorder) -> None:
    event = web("alias", previousId="anon-old")
    mapping = {"user_id": {"@path": "$.previousId"}, "global_user_id": {"@path": "$.userId"},
               "min_id_length": 3}  # fmt: skip
    mapped = Mapped(event["messageId"], resolve(mapping, event), event)
    (request,) = amplitude(endpoint=recorder.base_url).build("mapUser", [mapped])
    assert amplitude().build("mapUser", [mapped])[0].url == "https://api.amplitude.com/usermap"
    deliver([request])
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/usermap")
    assert headers(got) == FORM_HEADERS
    fields = {k: v[0] for k, v in parse_qs(got.body.decode(), strict_parsing=True).items()}
    assert fields == {
        "api_key": API_KEY,
        "mapping": '[{"user_id":"anon-old","global_user_id":"user-42","min_id_length":3}]',
        "options": '{"min_id_length":3}',
    }
    no_options = Mapped("m2", {"user_id": "a", "global_user_id": "b"}, event)
    (request,) = amplitude().build("mapUser", [no_options])
    assert b"options" not in request.body  # Map User, unlike the others, leaves it out


def test_form_bodies_are_url_search_params() -> None:
    """`*` stays as it is and `~` is escaped, as URLSearchParams does (urlencode: the reverse)."""
    event = web("identify", traits={"name": "a*b~c d"})
    ((_, action, mapped),) = preset_work(event)
    (request,) = Amplitude(Amplitude.parse_settings({"apiKey": "k*~"})).build(action, [mapped])
    assert request.body.startswith(b"api_key=k*%7E&identification=")
    assert b"a*b%7Ec+d" in request.body


def test_only_the_actions_fields_reach_the_request() -> None:
    """actions-core validates the payload first: unknown keys go, values take their field's
    type, and a payload missing a required field is refused with ajv's message."""
    event = web("track", event="Signed Up")
    payload = {"event_type": 42, "library2": {"behavior": "auto", "junk": 1}, "junk": "x",
               "price": "12.5", "use_batch_endpoint": "true", "min_id_length": ["4"]}  # fmt: skip
    (request,) = amplitude().build("logEventV2", [Mapped("m", payload, event)])
    assert request.url.endswith("/batch")
    assert msgspec.json.decode(request.body) == {
        "api_key": API_KEY,
        "events": [{"event_type": "42", "use_batch_endpoint": True, "library": "segment"}],
        "options": {"min_id_length": 4},
    }
    with pytest.raises(
        ValueError, match="The root value is missing the required field 'event_type'"
    ):
        amplitude().build("logEventV2", [Mapped("m", {"user_id": "u"}, event)])
    with pytest.raises(ValueError, match="Event Properties must be an object but it was a string"):
        amplitude().build(
            "logEventV2", [Mapped("m", {"event_type": "e", "event_properties": "x"}, event)]
        )


def test_group_identify_without_a_user_only_identifies_the_group() -> None:
    event = web("group", groupId="acme-inc")
    payload = {"group_type": "company", "group_value": "acme-inc", "time": "not a time"}
    (request,) = amplitude().build("groupIdentifyUser", [Mapped("m", payload, event)])
    assert request.url == "https://api2.amplitude.com/groupidentify"
    payload |= {"user_id": "user-42"}
    user, _ = amplitude().build("groupIdentifyUser", [Mapped("m", payload, event)])
    # dayjs reads no time in it: NaN, which JSON writes as null
    assert msgspec.json.decode(parse_qs(user.body.decode())["identification"][0])[0]["time"] is None


@pytest.mark.parametrize(
    ("region", "url"),
    [("north_america", "https://api2.amplitude.com/2/httpapi"),
     ("europe", "https://api.eu.amplitude.com/2/httpapi")],
    ids=["north-america", "europe"],
)  # fmt: skip
def test_regions(region: str, url: str) -> None:
    event = web("track", event="Signed Up")
    ((_, action, mapped),) = preset_work(event)
    (request,) = amplitude(region=region).build(action, [mapped])
    assert request.url == url


def answer(recorder: Recorder, reply: Reply, ids: Sequence[str] = ("m0",)) -> Outcome:
    """Send a Log Event request of `ids` to the recorder answering `reply`; interpret it."""
    events = [web("track", event="Signed Up", messageId=mid) for mid in ids]
    (preset,) = [p for p in Amplitude.presets if p.name == "Track Calls"]
    destination = amplitude(endpoint=recorder.base_url)
    mapped = [Mapped(e["messageId"], resolve(preset.mapping, e), e) for e in events]
    (request,) = destination.build("logEventV2", mapped)
    recorder.respond_with(reply)
    (response,) = deliver([request])
    return destination.interpret(request, response)


INVALID = {
    "code": 400,
    "error": "Request missing required field",
    "missing_field": "event_type",
    "events_with_invalid_fields": {"time": [3]},
    "events_with_missing_fields": {"event_type": [0]},
    "silenced_events": [4],
}


@pytest.mark.parametrize(
    ("reply", "verdict", "reason", "retry_after_s"),
    [
        (Reply(200, {"code": 200, "events_ingested": 1}), Verdict.DELIVERED, "HTTP 200", None),
        (Reply(429, {"code": 429, "error": "Too many requests for some devices and users"},
               {"Retry-After": "7"}), Verdict.RETRY, "HTTP 429", 7.0),
        (Reply(429, {"code": 429}), Verdict.RETRY, "HTTP 429", 30.0),
        (Reply(500, "oops"), Verdict.RETRY, "HTTP 500", None),
        (Reply(503, ""), Verdict.RETRY, "HTTP 503", None),
        (Reply(401, {"code": 401, "error": "Invalid API key"}), Verdict.PARK, "HTTP 401", None),
        (Reply(413, {"code": 413, "error": "Payload too large"}), Verdict.RETRY,
         "payload_too_large", None),
        (Reply(400, {"code": 400, "error": "Invalid JSON request body"}), Verdict.PARK, "HTTP 400",
         None),
    ],
    ids=["200", "429-retry-after", "429-throttled", "500", "503", "401", "413", "400"],
)  # fmt: skip
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, reason: str, retry_after_s: float | None
) -> None:
    outcome = answer(recorder, reply)
    assert (outcome.verdict, outcome.reason, outcome.retry_after_s) == (
        verdict,
        reason,
        retry_after_s,
    )
    assert outcome.failures == {}


def test_per_event_errors_park_those_events_and_resend_the_others(recorder: Recorder) -> None:
    """A 400 ingests nothing: the named events park, the rest must be sent again."""
    ids = [f"m{i}" for i in range(6)]
    outcome = answer(recorder, Reply(400, INVALID), ids)
    assert outcome.verdict is Verdict.RETRY
    assert set(outcome.failures) == {"m0", "m3", "m4"}
    assert {f.verdict for f in outcome.failures.values()} == {Verdict.PARK}
    assert outcome.failures["m0"].reason == "HTTP 400: Request missing required field"


def test_per_event_errors_naming_every_event_park_the_request(recorder: Recorder) -> None:
    body = {"code": 400, "error": "Events silenced for device_id", "silenced_events": [0, 1]}
    outcome = answer(recorder, Reply(400, body), ["m0", "m1"])
    assert outcome.verdict is Verdict.PARK
    assert set(outcome.failures) == {"m0", "m1"}


@pytest.mark.parametrize(
    ("user_agent", "parsed"),
    [
        # amplitude.test.ts, "supports parsing userAgent when the setting is true"
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/53.0.2785.143 Safari/537.36",
         {"os_name": "Mac OS", "os_version": "53", "device_manufacturer": "Apple",
          "device_model": "Macintosh"}),
        # amplitude.test.ts, createTestEvent's default user agent
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, "
         "like Gecko) Version/9.0 Mobile/13B143 Safari/601.1",
         {"os_name": "iOS", "os_version": "9", "device_manufacturer": "Apple",
          "device_model": "iPhone", "device_type": "mobile"}),
        ("Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.3 Mobile/15E148 Safari/604.1",
         {"os_name": "iOS", "os_version": "17", "device_manufacturer": "Apple",
          "device_model": "iPad", "device_type": "tablet"}),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
         {"os_name": "Windows", "os_version": "122", "device_model": "Windows"}),
        ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/122.0.0.0 Mobile Safari/537.36",
         {"os_name": "Android", "os_version": "122", "device_manufacturer": "Samsung",
          "device_model": "SM-S918B", "device_type": "mobile"}),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
         {"os_name": "Linux", "os_version": "123", "device_model": "Linux"}),
        # Chrome's reduced user agent: the model is "K", from no known maker
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Mobile Safari/537.36",
         {"os_name": "Android", "os_version": "120", "device_model": "K",
          "device_type": "mobile"}),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Mobile Safari/537.36",
         {"os_name": "Android", "os_version": "120", "device_manufacturer": "Google",
          "device_model": "Pixel 8", "device_type": "mobile"}),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
         "Gecko) Version/17.1 Safari/605.1.15",
         {"os_name": "Mac OS", "os_version": "17", "device_manufacturer": "Apple",
          "device_model": "Macintosh"}),
        # ua-parser-js finds an Oculus Quest in "re-quest-s": Segment sends what it finds
        ("python-requests/2.31.0",
         {"device_manufacturer": "Facebook", "device_model": "quest", "device_type": "wearable"}),
        ("", {}),
    ],
    ids=["mac-chrome-53", "iphone-safari-9", "ipad", "windows-edge", "android-samsung",
         "linux-firefox", "android-reduced", "pixel", "mac-safari", "python-requests", "empty"],
)  # fmt: skip
def test_parse_user_agent(user_agent: str, parsed: dict[str, str]) -> None:
    assert parse_user_agent(user_agent, {}) == parsed


def test_user_agent_data_wins() -> None:
    data = {"model": "Pixel 8", "platformVersion": "14.0.0"}
    parsed = parse_user_agent(CHROME_MAC, data)
    assert (parsed["device_model"], parsed["os_version"]) == ("Pixel 8", "14.0.0")


def test_settings_and_declaration() -> None:
    assert load("amplitude") is Amplitude
    assert (Amplitude.name, tuple(Amplitude.aliases)) == ("Actions Amplitude", ("Amplitude",))
    with pytest.raises(msgspec.ValidationError, match="api_key"):
        Amplitude.parse_settings({})
    with pytest.raises(msgspec.ValidationError, match="region"):
        Amplitude.parse_settings({"api_key": API_KEY, "region": "mars"})
    settings = Amplitude.parse_settings({"api_key": API_KEY, "secret_key": "s3cr3t"})
    assert isinstance(settings, AmplitudeSettings)
    assert API_KEY not in repr(settings) and "s3cr3t" not in repr(settings)
    assert [(p.name, p.action, p.trigger) for p in Amplitude.presets] == [
        ("Track Calls", "logEventV2", 'type = "track" and event != "Order Completed"'),
        ("Order Completed Calls", "logPurchase", 'type = "track" and event = "Order Completed"'),
        ("Page Calls", "logEventV2", 'type = "page"'),
        ("Screen Calls", "logEventV2", 'type = "screen"'),
        ("Identify Calls", "identifyUser", 'type = "identify"'),
    ]
    assert [(a.id, a.title, a.max_batch) for a in Amplitude.actions.values()] == [
        ("logEvent", "Log Event", 1),
        ("identifyUser", "Identify User", 1),
        ("mapUser", "Map User", 1),
        ("groupIdentifyUser", "Group Identify User", 1),
        ("logPurchase", "Log Purchase", 1),
        ("logEventV2", "Log Event V2", 2000),
    ]
