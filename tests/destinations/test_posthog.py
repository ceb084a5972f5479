"""PostHog: stored Segment events through the presets, sent to a recording server.

Expected bodies are derived by hand from Segment's "Posthog" Actions destination
(segmentio/action-destinations, destinations/posthog: event, identify, index.ts, metadata.json
and the __tests__), not from Sluice's output.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from destination_kit import deliver, presets_matching
from recorder import Recorded, Recorder, Reply
from sluice.destinations.base import InvalidPayload, Mapped, Verdict
from sluice.destinations.posthog import EVENT_MAPPING, PostHog, PostHogSettings
from sluice.destinations.registry import load
from sluice.mapping import resolve

API_KEY = "phc_3f9c2a7b1e5d4c8a9b0e1f2a3b4c5d6e7f8a9b0c1d"
MESSAGE_ID = "ajs-next-1709633730123-5c4d3f9e"
RECEIVED_AT = "2024-03-05T10:15:30.154Z"
TIMESTAMP = "2024-03-05T10:15:30.123Z"
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}
HEADERS = {"user-agent": "Segment (Actions)", "content-type": "application/json"}
PAGE = {
    "path": "/pricing",
    "referrer": "https://www.google.com/",
    "search": "",
    "title": "Pricing",
    "url": "https://www.example.com/pricing",
}


def web(type_: str, **fields: Any) -> dict[str, Any]:
    """A call from analytics.js as Sluice stores it: camelCase, receivedAt, `…Z` timestamps."""
    return {
        "type": type_,
        "messageId": MESSAGE_ID,
        "anonymousId": "6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11",
        "userId": "user-42",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.64.0"},
            "ip": "203.0.113.7",
            "locale": "en-US",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
            "page": dict(PAGE),
        },
        "integrations": {},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": RECEIVED_AT,
        "timestamp": TIMESTAMP,
        **copy.deepcopy(fields),
    }


def posthog(**settings: Any) -> PostHog:
    return PostHog(PostHog.parse_settings({"api_key": API_KEY, "project_id": "4242", **settings}))


def preset_work(event: dict[str, Any]) -> list[tuple[str, str, Mapped]]:
    return [(p.name, p.action, m) for p, m in presets_matching(PostHog, event)]


def headers(got: Recorded) -> dict[str, str]:
    return {k: v for k, v in got.headers.items() if k not in TRANSPORT}


def sent(recorder: Recorder, event: dict[str, Any], preset: str) -> Recorded:
    """Run the event through its one preset, send the request, return what arrived."""
    ((name, action, mapped),) = preset_work(event)
    assert name == preset
    requests = posthog(endpoint=recorder.base_url).build(action, [mapped])
    assert [r.message_ids for r in requests] == [[event["messageId"]]]
    (response,) = deliver(requests)
    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert headers(got) == HEADERS
    return got


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"api_key": API_KEY, "historical_migration": False, "batch": list(events)}


def test_track_event(recorder: Recorder) -> None:
    properties = {"plan": "pro", "trial_days": 14}
    got = sent(recorder, web("track", event="Signed Up", properties=properties), "Track Event")
    assert (got.method, got.path, got.query) == ("POST", "/batch/", {})
    # `$process_person_profile` is Segment's `anonymous_event_capture` (false) sent as it is.
    assert got.json() == batch({
        "event": "Signed Up",
        "timestamp": RECEIVED_AT,  # Segment maps receivedAt, not timestamp
        "properties": {**properties, "distinct_id": "user-42", "$process_person_profile": False,
                       "$ip": "203.0.113.7"},
    })  # fmt: skip


def test_page_view(recorder: Recorder) -> None:
    event = web("page", name="Pricing", properties={**PAGE, "name": "Pricing"})
    got = sent(recorder, event, "Page View")
    assert (got.method, got.path) == ("POST", "/batch/")
    assert got.json() == batch({
        "event": "$pageview",
        "timestamp": RECEIVED_AT,
        "properties": {**PAGE, "name": "Pricing", "$current_url": PAGE["url"],
                       "distinct_id": "user-42", "$process_person_profile": False,
                       "$ip": "203.0.113.7"},
    })  # fmt: skip


def test_screen_view(recorder: Recorder) -> None:
    event = web("screen", name="Home", properties={"tab": "feed"})
    event["context"] = {"library": {"name": "analytics-swift", "version": "1.5.0"},
                        "os": {"name": "iOS", "version": "17.4"}}  # fmt: skip
    got = sent(recorder, event, "Screen View")
    # The preset names it `$screenview`, but Segment's code sends `$screen` for screens.
    assert got.json() == batch({
        "event": "$screen",
        "timestamp": RECEIVED_AT,
        "properties": {"tab": "feed", "$screen_name": "Home", "distinct_id": "user-42",
                       "$process_person_profile": False},
    })  # fmt: skip


def test_identify(recorder: Recorder) -> None:
    traits = {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}
    got = sent(recorder, web("identify", traits=traits), "Identify")
    assert (got.method, got.path, got.query) == ("POST", "/i/v0/e/", {})
    assert got.json() == {
        "event": "$identify",
        "api_key": API_KEY,
        "distinct_id": "user-42",
        "properties": {"$set": traits, "$ip": "203.0.113.7"},
        "timestamp": TIMESTAMP,  # identify maps timestamp
    }
    anonymous = web("identify", traits=traits)
    del anonymous["userId"]
    ((_, action, mapped),) = preset_work(anonymous)
    with pytest.raises(ValueError, match="distinct_id"):
        posthog().build(action, [mapped])


def test_no_group_or_alias_preset() -> None:
    assert preset_work(web("group", groupId="acme-inc", traits={})) == []
    assert preset_work(web("alias", previousId="anon")) == []


def test_overrides_remove_same_named_properties() -> None:
    """Segment writes `$current_url: undefined` over the properties of a non-page event."""
    event = web("track", event="Clicked", properties={"$current_url": "x", "$screen_name": "y"})
    ((_, action, mapped),) = preset_work(event)
    (request,) = posthog().build(action, [mapped])
    (item,) = msgspec.json.decode(request.body)["batch"]
    assert item["properties"] == {"distinct_id": "user-42", "$process_person_profile": False,
                                  "$ip": "203.0.113.7"}  # fmt: skip


def test_batching_follows_enable_batching() -> None:
    events = [web("track", event=f"Step {i}", messageId=f"m{i}") for i in range(3)]
    as_preset = [Mapped(e["messageId"], resolve(EVENT_MAPPING, e), e) for e in events]
    assert [r.message_ids for r in posthog().build("event", as_preset)] == [["m0"], ["m1"], ["m2"]]
    mapping = {**EVENT_MAPPING, "enable_batching": True, "anonymous_event_capture": True}
    batched = [Mapped(e["messageId"], resolve(mapping, e), e) for e in events]
    requests = posthog(historical_migration=True).build("event", batched)
    assert [r.message_ids for r in requests] == [["m0", "m1", "m2"]]
    assert requests[0].url == "https://us.i.posthog.com/batch/"
    body = msgspec.json.decode(requests[0].body)
    assert body["historical_migration"] is True
    assert [i["properties"]["$process_person_profile"] for i in body["batch"]] == [True] * 3
    # No userId, no distinct_id: refused as Segment's schema refuses it (the engine parks it).
    anonymous = {k: v for k, v in web("track", event="Anonymous", messageId="m3").items()
                 if k != "userId"}  # fmt: skip
    with pytest.raises(InvalidPayload, match="missing the required field 'distinct_id'"):
        posthog().build("event", [Mapped("m3", resolve(EVENT_MAPPING, anonymous), anonymous)])


@pytest.mark.parametrize(
    ("reply", "verdict", "reason", "retry_after_s"),
    [
        (Reply(200, {"status": 1}), Verdict.DELIVERED, "HTTP 200", None),
        (Reply(429, {"type": "quota_limited"}, {"Retry-After": "3"}), Verdict.RETRY, "HTTP 429",
         3.0),
        (Reply(500, "upstream error"), Verdict.RETRY, "HTTP 500", None),
        (Reply(401, {"type": "authentication_error", "code": "invalid_api_key"}), Verdict.PARK,
         "HTTP 401", None),
        (Reply(400, {"type": "validation_error", "code": "invalid_payload"}), Verdict.PARK,
         "HTTP 400", None),
        (Reply(413, "payload too large"), Verdict.RETRY, "payload_too_large", None),
    ],
    ids=["200", "429-retry-after", "500", "401", "400", "413"],
)  # fmt: skip
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, reason: str, retry_after_s: float | None
) -> None:
    event = web("track", event="Signed Up")
    ((_, action, mapped),) = preset_work(event)
    destination = posthog(endpoint=recorder.base_url)
    (request,) = destination.build(action, [mapped])
    recorder.respond_with(reply)
    (response,) = deliver([request])
    outcome = destination.interpret(request, response)
    assert (outcome.verdict, outcome.reason, outcome.retry_after_s) == (
        verdict,
        reason,
        retry_after_s,
    )
    assert outcome.failures == {}


def test_settings_and_declaration() -> None:
    assert load("posthog") is PostHog
    assert (PostHog.name, tuple(PostHog.aliases)) == ("Posthog", ("PostHog",))
    with pytest.raises(msgspec.ValidationError, match="api_key"):
        PostHog.parse_settings({"project_id": "4242"})
    settings = PostHog.parse_settings({"api_key": API_KEY, "endpoint": "https://eu.i.posthog.com"})
    assert isinstance(settings, PostHogSettings) and API_KEY not in repr(settings)
    assert PostHog(settings).endpoint == "https://eu.i.posthog.com"
    assert [(p.name, p.action, p.trigger) for p in PostHog.presets] == [
        ("Track Event", "event", 'type = "track"'),
        ("Page View", "event", 'type = "page"'),
        ("Screen View", "event", 'type = "screen"'),
        ("Identify", "identify", 'type = "identify"'),
    ]
