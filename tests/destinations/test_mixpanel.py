"""Mixpanel: stored Segment events through the presets, sent to a recording server.

Expected bodies are derived by hand from Segment's action code and tests (@segment/
action-destinations 3.497.0, destinations/mixpanel: trackEvent, trackPurchase, identifyUser,
groupIdentifyUser, alias, incrementProperties, mixpanel-properties.ts, common/utils.ts and their
__tests__), not from Sluice's output. The differential suite (tests/bridge/test_differential.py)
compares the requests with those Segment's own code makes, byte for byte.
"""

from __future__ import annotations

import base64
import copy
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest

from destination_kit import deliver, presets_matching
from recorder import Recorded, Recorder, Reply
from sluice.destinations.base import InvalidPayload, Mapped, Outcome, Verdict
from sluice.destinations.mixpanel import (
    ALIAS_MAPPING,
    Mixpanel,
    MixpanelSettings,
    browser,
)
from sluice.destinations.mixpanel_requests import profile_set
from sluice.destinations.mixpanel_schema import js_to_number
from sluice.destinations.registry import load
from sluice.fql import compile_trigger
from sluice.mapping import resolve

TOKEN = "f3a1c2e4b5d6f7a8b9c0d1e2f3a4b5c6"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MESSAGE_ID = "ajs-next-1709633730123-5c4d3f9e"
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
FORM_HEADERS = {
    "user-agent": "Segment (Actions)",
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
}


def web(type_: str, **fields: Any) -> dict[str, Any]:
    """A call from analytics.js as Sluice stores it: camelCase, receivedAt, `…Z` timestamps."""
    return {
        "type": type_,
        "messageId": MESSAGE_ID,
        "anonymousId": ANONYMOUS_ID,
        "userId": "user-42",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.64.0"},
            "ip": "203.0.113.7",
            "locale": "en-US",
            "userAgent": CHROME_MAC,
            "page": dict(PAGE),
            "campaign": {"name": "spring_sale", "source": "google", "medium": "cpc"},
        },
        "integrations": {},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
        **copy.deepcopy(fields),
    }


def ios_screen() -> dict[str, Any]:
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
            "location": {"country": "United States"},
            "library": {"name": "analytics-swift", "version": "1.5.0"},
            "locale": "en-US",
            "ip": "198.51.100.23",
        },
        "integrations": {},
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
    }  # fmt: skip


def mixpanel(**settings: Any) -> Mixpanel:
    base = {"project_token": TOKEN, "api_secret": SECRET}
    return Mixpanel(Mixpanel.parse_settings({**base, **settings}))


def preset_work(event: dict[str, Any]) -> list[tuple[str, str, Mapped]]:
    return [(p.name, p.action, m) for p, m in presets_matching(Mixpanel, event)]


def headers(got: Recorded) -> dict[str, str]:
    return {k: v for k, v in got.headers.items() if k not in TRANSPORT}


def form_data(got: Recorded) -> Any:
    (data,) = parse_qs(got.body.decode(), strict_parsing=True)["data"]
    assert set(parse_qs(got.body.decode())) == {"data"}
    return msgspec.json.decode(data)


def basic(credential: str) -> str:
    return "Basic " + base64.b64encode(f"{credential}:".encode()).decode()


# The properties Segment's getEventProperties derives from the analytics.js event above, in its
# order (Simplified ID Merge: $anon_id/$device_id from the anonymous id, $identified_id/$user_id
# from the user id).
WEB_PROPERTIES = {
    "time": MS,
    "ip": "203.0.113.7",
    "id": "user-42",
    "$anon_id": ANONYMOUS_ID,
    "distinct_id": "user-42",
    "$browser": "Chrome",
    "$browser_version": "122.0.0.0",
    "$current_url": PAGE["url"],
    "$device_id": ANONYMOUS_ID,
    "$identified_id": "user-42",
    "$insert_id": MESSAGE_ID,
    "$lib_version": "next-1.64.0",
    "$locale": "en-US",
    "$referrer": PAGE["referrer"],
    "$source": "segment",
    "$user_id": "user-42",
    "mp_lib": "Segment Actions: analytics.js",
    "utm_campaign": "spring_sale",
    "utm_medium": "cpc",
    "utm_source": "google",
}


def test_track_calls(recorder: Recorder) -> None:
    event = web("track", event="Signed Up", properties={"plan": "pro", "time": 1, "ip": "x"})
    work = preset_work(event)
    assert [(name, action) for name, action, _ in work] == [("Track Calls", "trackEvent")]
    requests = mixpanel(endpoint=recorder.base_url).build("trackEvent", [work[0][2]])
    assert [r.message_ids for r in requests] == [[MESSAGE_ID]]

    (response,) = deliver(requests)

    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/import", {"strict": ["1"]})
    assert headers(got) == {
        "user-agent": "Segment (Actions)",
        "content-type": "application/json",
        "authorization": basic(SECRET),
    }
    # The event's `time` is reserved (not overridden); its `ip` replaces the context's in place.
    expected = {**WEB_PROPERTIES, "ip": "x", "event_original_name": "Signed Up", "plan": "pro"}
    assert got.json() == [{"event": "Signed Up", "properties": expected}]
    assert list(got.json()[0]["properties"]) == list(expected)  # Segment's order


def test_order_completed_calls(recorder: Recorder) -> None:
    """trackPurchase: the order, then "Product Purchased" per product, a millisecond apart, with
    the order's properties but its totals, and `$insert_id` `<index><insert id>`."""
    products = [{"product_id": "p-1", "sku": "S-1", "price": "19.5", "quantity": 2, "x": 1},
                {"product_id": "p-2", "price": 3}]  # fmt: skip
    order = {"order_id": "o-1", "total": 42.5, "coupon": "C", "currency": "EUR",
             "products": products}  # fmt: skip
    event = web("track", event="Order Completed", properties=order)
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Order Completed Calls", "trackPurchase")
    deliver(mixpanel(endpoint=recorder.base_url).build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/import")
    base = {**WEB_PROPERTIES, "event_original_name": "Order Completed"}
    first = {**base, "$insert_id": f"0{MESSAGE_ID}", "time": MS - 1, "order_id": "o-1",
             # products as mapped: the preset's fields only; price is a number field, so
             # "19.5" becomes 19.5
             "product_id": "p-1", "sku": "S-1", "price": 19.5, "quantity": 2}  # fmt: skip
    second = {**base, "$insert_id": f"1{MESSAGE_ID}", "time": MS - 2, "order_id": "o-1",
              "product_id": "p-2", "price": 3}  # fmt: skip
    assert got.json() == [
        {"event": "Order Completed", "properties": {**base, **order}},
        {"event": "Product Purchased", "properties": first},
        {"event": "Product Purchased", "properties": second},
    ]
    off = Mapped("m2", {**mapped.payload, "generatePurchaseEventPerProduct": False}, event)
    (request,) = mixpanel().build(action, [off])
    assert [e["event"] for e in msgspec.json.decode(request.body)] == ["Order Completed"]


def test_purchase_failed_records_name_the_order(recorder: Recorder) -> None:
    """Mixpanel's `failed_records` index the events sent; a purchase sends several."""
    events = [
        web("track", event="Order Completed", messageId=f"m{i}",
            properties={"products": [{"sku": "a"}, {"sku": "b"}]})
        for i in range(2)
    ]  # fmt: skip
    (preset,) = [p for p in Mixpanel.presets if p.name == "Order Completed Calls"]
    destination = mixpanel(endpoint=recorder.base_url)
    mapped = [Mapped(e["messageId"], resolve(preset.mapping, e), e) for e in events]
    (request,) = destination.build("trackPurchase", mapped)
    assert request.message_ids == ["m0", "m1"]
    assert len(msgspec.json.decode(request.body)) == 6
    body = {"code": 400, "error": "some data points in the request failed validation",
            "num_records_imported": 5, "failed_records": [failed_record(4)]}  # fmt: skip
    recorder.respond_with(Reply(400, body))
    (response,) = deliver([request])
    outcome = destination.interpret(request, response)
    assert outcome.verdict is Verdict.DELIVERED
    assert set(outcome.failures) == {"m1"}


def test_page_calls_with_source_name(recorder: Recorder) -> None:
    event = web("page", name="Pricing", properties={**PAGE, "name": "Pricing"})
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Page Calls", "trackEvent")
    destination = mixpanel(endpoint=recorder.base_url, source_name="website (prod)")
    deliver(destination.build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    properties = {**WEB_PROPERTIES, "segment_source_name": "website (prod)",
                  "event_original_name": "Pricing", **event["properties"]}  # fmt: skip
    assert got.json() == [{"event": "Viewed Pricing", "properties": properties}]


def test_screen_calls_from_ios(recorder: Recorder) -> None:
    event = ios_screen()
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Screen Calls", "trackEvent")
    deliver(mixpanel(endpoint=recorder.base_url).build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    assert got.json() == [{
        "event": "Viewed Home",
        "properties": {
            "time": MS,
            "ip": "198.51.100.23",
            "id": "user-42",
            "$anon_id": "E3B0C442-98FC-4C14-9AFB-F4C8996FB924",
            "distinct_id": "user-42",
            "$app_build_number": "321",
            "$app_version_string": "3.2.1",
            "$app_namespace": "com.example.app",
            "$app_name": "Example",
            "$cellular_enabled": False,
            "$carrier": "T-Mobile",
            "$device": "iPhone",
            # Segment sends the anonymous id as $device_id (Simplified ID Merge).
            "$device_id": "E3B0C442-98FC-4C14-9AFB-F4C8996FB924",
            "$device_type": "ios",
            "$device_name": "iPhone",
            "$identified_id": "user-42",
            "$insert_id": "8C0A7E52-4F3B-4D8B-9E0A-2F0C7C3B1D11",
            "$lib_version": "1.5.0",
            "$locale": "en-US",
            "$manufacturer": "Apple",
            "$model": "iPhone15,2",
            "$os": "iOS",
            "$os_version": "17.4",
            "$screen_height": 852,
            "$screen_width": 393,
            "$screen_density": 3,
            "$source": "segment",
            "$user_id": "user-42",
            "$wifi_enabled": True,
            "mp_country_code": "United States",
            "mp_lib": "Segment Actions: analytics-swift",
            "event_original_name": "Home",
            "tab": "feed",
        },
    }]  # fmt: skip


def test_identify_calls(recorder: Recorder) -> None:
    traits = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
              "created": "2024-01-02T03:04:05.000Z", "plan": "pro"}  # fmt: skip
    event = web("identify", traits=traits)
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Identify Calls", "identifyUser")
    requests = mixpanel(endpoint=recorder.base_url).build(action, [mapped])
    assert [r.message_ids for r in requests] == [[MESSAGE_ID], [MESSAGE_ID]]

    deliver(requests)

    identify, engage = recorder.wait_for(2)
    assert [(r.method, r.path, r.query) for r in (identify, engage)] == [
        ("POST", "/track", {}),
        ("POST", "/engage", {}),
    ]
    assert headers(identify) == headers(engage) == FORM_HEADERS
    assert form_data(identify) == {
        "event": "$identify",
        "properties": {"$identified_id": "user-42", "$anon_id": ANONYMOUS_ID, "token": TOKEN},
    }
    assert form_data(engage) == {
        "$token": TOKEN,
        "$distinct_id": "user-42",
        "$ip": "203.0.113.7",
        "$set": {
            "plan": "pro",
            "$created": "2024-01-02T03:04:05.000Z",
            "$email": "ada@example.com",
            "$first_name": "Ada",
            "$last_name": "Lovelace",
            "$name": "Ada Lovelace",
        },
    }


def test_identify_without_traits_only_links_ids(recorder: Recorder) -> None:
    event = web("identify", traits={})
    ((_, action, mapped),) = preset_work(event)
    (request,) = mixpanel(source_name="web").build(action, [mapped])
    assert request.url == "https://api.mixpanel.com/track"
    data = msgspec.json.decode(parse_qs(request.body.decode())["data"][0])
    assert data["properties"]["segment_source_name"] == "web"
    del event["anonymousId"]
    ((_, action, mapped),) = preset_work(event)
    assert mixpanel().build(action, [mapped]) == []  # nothing to send, as in Segment


def test_identify_without_user_id_sets_the_anonymous_profile() -> None:
    """No userId: `$distinct_id` is the anonymous id; `createdAt` is `$created`."""
    event = web("identify", traits={"createdAt": "2024-01-02T03:04:05.000Z", "plan": None})
    del event["userId"]
    ((_, action, mapped),) = preset_work(event)
    identify, engage = mixpanel().build(action, [mapped])
    data = msgspec.json.decode(parse_qs(identify.body.decode())["data"][0])
    assert data["properties"] == {"$anon_id": ANONYMOUS_ID, "token": TOKEN}
    data = msgspec.json.decode(parse_qs(engage.body.decode())["data"][0])
    assert data == {
        "$token": TOKEN,
        "$distinct_id": ANONYMOUS_ID,
        "$ip": "203.0.113.7",
        "$set": {"plan": None, "$created": "2024-01-02T03:04:05.000Z"},
    }


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({"name": "Ada", "firstName": "A", "lastName": "L"},
         {"$first_name": "A", "$last_name": "L", "$name": "Ada"}),
        ({"firstName": "Ada"}, {"$first_name": "Ada"}),
        ({"lastName": "Lovelace"}, {"$last_name": "Lovelace"}),
        ({"username": "ada", "phone": "+44 20", "title": "Countess"},
         {"title": "Countess", "$username": "ada", "$phone": "+44 20"}),
    ],
    ids=["name-wins", "first-only", "last-only", "others"],
)  # fmt: skip
def test_profile_set(traits: dict[str, Any], expected: dict[str, Any]) -> None:
    """identifyUser/__tests__: `$name` comes from firstName and lastName only when both exist."""
    assert profile_set(traits) == expected


def test_group_calls(recorder: Recorder) -> None:
    event = web("group", groupId="acme-inc", traits={"name": "Acme Inc", "plan": "enterprise"})
    ((name, action, mapped),) = preset_work(event)
    assert (name, action) == ("Group Calls", "groupIdentifyUser")
    deliver(mixpanel(endpoint=recorder.base_url).build(action, [mapped]))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/groups")
    assert headers(got) == FORM_HEADERS
    assert form_data(got) == {
        "$token": TOKEN,
        "$group_key": "$group_id",
        "$group_id": "acme-inc",
        "$set": {"plan": "enterprise", "$name": "Acme Inc"},  # Segment renames `name`
    }
    # groupIdentifyUser/__tests__: a trait named like the group key gives the group id.
    keyed = Mapped("m2", {**mapped.payload, "group_key": "name"}, event)
    (request,) = mixpanel().build(action, [keyed])
    data = msgspec.json.decode(parse_qs(request.body.decode())["data"][0])
    assert (data["$group_key"], data["$group_id"]) == ("name", "Acme Inc")
    with pytest.raises(InvalidPayload, match='"traits" is a required field'):
        mixpanel().build(action, [Mapped("m3", {"group_id": "acme-inc"}, event)])
    with pytest.raises(InvalidPayload, match="missing the required field 'group_id'"):
        mixpanel().build(action, [Mapped("m4", {"traits": {}}, event)])


def test_alias(recorder: Recorder) -> None:
    """Segment ships the Alias action without a preset; a subscription turns it on."""
    event = web("alias", previousId=ANONYMOUS_ID)
    assert preset_work(event) == []
    assert compile_trigger('type = "alias"')(event)
    mapped = Mapped(MESSAGE_ID, resolve(ALIAS_MAPPING, event), event)
    deliver(mixpanel(endpoint=recorder.base_url).build("alias", [mapped]))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/track")
    assert form_data(got) == {
        "event": "$create_alias",
        "properties": {"distinct_id": ANONYMOUS_ID, "alias": "user-42", "token": TOKEN},
    }


INCREMENT_MAPPING = {
    "ip": {"@path": "$.context.ip"},
    "user_id": {"@path": "$.userId"},
    "anonymous_id": {"@path": "$.anonymousId"},
    "increment": {"@path": "$.properties.increment"},
}


def test_increment_properties(recorder: Recorder) -> None:
    """Segment ships Increment Properties without a preset; `$add` takes numbers and numeric
    text, skips other values, and refuses text that is not a number."""
    increment = {"logins": 1, "credits": "2.5", "flag": True, "note": None}
    event = web("track", event="Logged In", properties={"increment": increment})
    mapped = Mapped(MESSAGE_ID, resolve(INCREMENT_MAPPING, event), event)
    deliver(mixpanel(endpoint=recorder.base_url).build("incrementProperties", [mapped]))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/engage")
    assert headers(got) == FORM_HEADERS
    assert form_data(got) == {
        "$token": TOKEN,
        "$distinct_id": "user-42",
        "$ip": "203.0.113.7",
        "$add": {"logins": 1, "credits": 2.5},
    }
    bad = Mapped("m2", {**mapped.payload, "increment": {"logins": "many"}}, event)
    with pytest.raises(InvalidPayload, match='The key "logins" was not numeric'):
        mixpanel().build("incrementProperties", [bad])
    many = Mapped("m3", {"increment": {f"k{i}": i for i in range(21)}}, event)
    with pytest.raises(InvalidPayload, match="Exceeded maximum of 20 properties"):
        mixpanel().build("incrementProperties", [many])
    nothing = Mapped("m4", {"increment": {}}, event)
    assert mixpanel().build("incrementProperties", [nothing]) == []


@pytest.mark.parametrize(
    ("text", "number"),
    [("2", 2), (" 2.50 ", 2.5), ("", 0), ("0x10", 16), ("1e3", 1000), ("-0.5", -0.5)],
)
def test_js_to_number(text: str, number: float) -> None:
    assert js_to_number(text) == number


def test_payloads_are_cleaned_as_segments_runtime_does() -> None:
    """Segment's runtime coerces to the fields' types, drops unknown fields, and (for a single
    event, not a batch) drops empty text at the top level before its code runs."""
    event = web("track", event="Signed Up")
    event["context"]["device"] = {"adTrackingEnabled": False}
    event["context"]["screen"] = {"width": "393"}
    event["context"]["page"]["referrer"] = ""
    (preset,) = [p for p in Mixpanel.presets if p.name == "Track Calls"]
    payload = {**resolve(preset.mapping, event), "unknown": 1}
    batched = Mapped(MESSAGE_ID, payload, event)
    single = Mapped(MESSAGE_ID, {**payload, "enable_batching": False}, event)
    (request,) = mixpanel().build("trackEvent", [batched])
    (properties,) = [e["properties"] for e in msgspec.json.decode(request.body)]
    assert (properties["ad_tracking_enabled"], properties["$screen_width"]) == ("false", 393)
    assert properties["$referrer"] == "" and "unknown" not in properties
    (request,) = mixpanel().build("trackEvent", [single])
    assert "$referrer" not in msgspec.json.decode(request.body)[0]["properties"]
    missing = Mapped(MESSAGE_ID, {**payload, "event": None}, event)
    with pytest.raises(InvalidPayload, match="missing the required field 'event'"):
        mixpanel().build("trackEvent", [missing])


def test_batching_regions_and_credentials() -> None:
    events = [web("track", event=f"Step {i}", messageId=f"m{i}") for i in range(3)]
    (preset,) = [p for p in Mixpanel.presets if p.name == "Track Calls"]
    mapped = [Mapped(e["messageId"], resolve(preset.mapping, e), e) for e in events]
    (request,) = mixpanel().build("trackEvent", mapped)
    assert request.url == "https://api.mixpanel.com/import?strict=1"
    assert request.message_ids == ["m0", "m1", "m2"]
    assert [e["event"] for e in msgspec.json.decode(request.body)] == ["Step 0", "Step 1", "Step 2"]
    single = [
        Mapped(m.message_id, {**m.payload, "enable_batching": False}, m.event) for m in mapped
    ]
    assert [r.message_ids for r in mixpanel().build("trackEvent", single)] == [
        ["m0"],
        ["m1"],
        ["m2"],
    ]
    (eu,) = mixpanel(api_region="EU 🇪🇺", strict_mode="0").build("trackEvent", mapped[:1])
    assert eu.url == "https://api-eu.mixpanel.com/import?strict=0"
    (by_token,) = mixpanel(api_secret="").build("trackEvent", mapped[:1])
    assert by_token.headers["authorization"] == basic(TOKEN)
    # `batch_size` caps the events of a request, as in Segment's batching.
    small = [Mapped(m.message_id, {**m.payload, "batch_size": 2}, m.event) for m in mapped]
    assert [r.message_ids for r in mixpanel().build("trackEvent", small)] == [
        ["m0", "m1"],
        ["m2"],
    ]


def import_answer(recorder: Recorder, reply: Reply, count: int = 1) -> Outcome:
    events = [web("track", event="Signed Up", messageId=f"m{i}") for i in range(count)]
    (preset,) = [p for p in Mixpanel.presets if p.name == "Track Calls"]
    destination = mixpanel(endpoint=recorder.base_url)
    mapped = [Mapped(e["messageId"], resolve(preset.mapping, e), e) for e in events]
    (request,) = destination.build("trackEvent", mapped)
    recorder.respond_with(reply)
    (response,) = deliver([request])
    return destination.interpret(request, response)


@pytest.mark.parametrize(
    ("reply", "verdict", "reason", "retry_after_s"),
    [
        (Reply(200, {"code": 200, "num_records_imported": 1, "status": "OK"}), Verdict.DELIVERED,
         "HTTP 200", None),
        (Reply(429, {"code": 429, "error": "too many requests"}, {"Retry-After": "12"}),
         Verdict.RETRY, "HTTP 429", 12.0),
        (Reply(500, {"code": 500, "error": "internal"}), Verdict.RETRY, "HTTP 500", None),
        (Reply(401, {"code": 401, "error": "Invalid credentials", "status": "error"}),
         Verdict.PARK, "HTTP 401", None),
        (Reply(413, {"code": 413, "error": "request too large"}), Verdict.RETRY,
         "payload_too_large", None),
        (Reply(400, {"code": 400, "error": "unable to parse json"}), Verdict.PARK, "HTTP 400",
         None),
    ],
    ids=["200", "429-retry-after", "500", "401", "413", "400-no-records"],
)  # fmt: skip
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, reason: str, retry_after_s: float | None
) -> None:
    outcome = import_answer(recorder, reply)
    assert (outcome.verdict, outcome.reason, outcome.retry_after_s) == (
        verdict,
        reason,
        retry_after_s,
    )
    assert outcome.failures == {}


def failed_record(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "insert_id": f"m{index}",
        "field": "properties.time",
        "message": "'properties.time' is invalid: must be specified as seconds since epoch",
    }


def test_strict_import_parks_the_failed_records_only(recorder: Recorder) -> None:
    body = {"code": 400, "error": "some data points in the request failed validation",
            "status": "Bad Request", "num_records_imported": 2,
            "failed_records": [failed_record(0), failed_record(2)]}  # fmt: skip
    outcome = import_answer(recorder, Reply(400, body), count=4)
    assert outcome.verdict is Verdict.DELIVERED
    assert set(outcome.failures) == {"m0", "m2"}
    failure = outcome.failures["m2"]
    assert failure.verdict is Verdict.PARK
    assert failure.reason.startswith("properties.time: 'properties.time' is invalid")


def test_strict_import_failing_every_record_parks(recorder: Recorder) -> None:
    records = [failed_record(0), failed_record(1)]
    body = {"code": 400, "error": "some data points in the request failed validation",
            "num_records_imported": 0, "failed_records": records}  # fmt: skip
    outcome = import_answer(recorder, Reply(400, body), count=2)
    assert outcome.verdict is Verdict.PARK
    assert set(outcome.failures) == {"m0", "m1"}


@pytest.mark.parametrize(
    ("body", "verdict"), [("1", Verdict.DELIVERED), ("0", Verdict.PARK)], ids=["1", "0"]
)
def test_engage_answers_zero_when_it_refuses(
    recorder: Recorder, body: str, verdict: Verdict
) -> None:
    event = web("group", groupId="acme-inc", traits={"name": "Acme Inc"})
    ((_, action, mapped),) = preset_work(event)
    destination = mixpanel(endpoint=recorder.base_url)
    (request,) = destination.build(action, [mapped])
    recorder.respond_with(Reply(200, body, {"content-type": "text/plain"}))
    (response,) = deliver([request])
    assert destination.interpret(request, response).verdict is verdict


@pytest.mark.parametrize(
    ("user_agent", "name", "version"),
    [
        # common/__test__/utils.test.ts
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/117.0.0.0 Safari/537.36", "Chrome", "117.0.0.0"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.0 Safari/605.1.15", "Safari", "17.0"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.0"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/117.0.0.0 Safari/537.36 Edg/117.0.2045.60", "Microsoft Edge", "117.0.2045.60"),
        ("Non-existent userAgent", "", None),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0", "Firefox",
         "123.0"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1", "Chrome iOS",
         "122.0.6261.89"),
    ],
    ids=["chrome", "safari", "mobile-safari", "edge", "unknown", "firefox", "chrome-ios"],
)  # fmt: skip
def test_browser(user_agent: str, name: str, version: str | None) -> None:
    assert browser(user_agent) == (name, version)


def test_settings_and_declaration() -> None:
    assert load("mixpanel") is Mixpanel
    assert (Mixpanel.name, tuple(Mixpanel.aliases)) == ("Mixpanel (Actions)", ("Mixpanel",))
    with pytest.raises(msgspec.ValidationError, match="project_token"):
        Mixpanel.parse_settings({"api_secret": SECRET})
    with pytest.raises(msgspec.ValidationError, match="api_region"):
        Mixpanel.parse_settings({"project_token": TOKEN, "api_region": "Mars"})
    settings = Mixpanel.parse_settings({"project_token": TOKEN, "api_secret": SECRET})
    assert isinstance(settings, MixpanelSettings)
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)
    assert [(p.name, p.action, p.trigger) for p in Mixpanel.presets] == [
        ("Track Calls", "trackEvent", 'type = "track" and event != "Order Completed"'),
        ("Order Completed Calls", "trackPurchase", 'type = "track" and event = "Order Completed"'),
        ("Page Calls", "trackEvent", 'type = "page"'),
        ("Screen Calls", "trackEvent", 'type = "screen"'),
        ("Identify Calls", "identifyUser", 'type = "identify"'),
        ("Group Calls", "groupIdentifyUser", 'type = "group"'),
    ]
    assert list(Mixpanel.actions) == ["trackEvent", "identifyUser", "groupIdentifyUser", "alias",
                                      "trackPurchase", "incrementProperties"]  # fmt: skip
    assert Mixpanel.actions["trackEvent"].max_batch == 2000
