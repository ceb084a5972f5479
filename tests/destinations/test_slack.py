"""Slack (Actions): "Post Message" with a templated text, as Segment's action posts it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from destination_kit import deliver
from recorder import Recorder, Reply
from sluice.destinations.base import Mapped, Verdict
from sluice.destinations.registry import load
from sluice.destinations.slack import Slack
from sluice.fql import compile_trigger
from sluice.mapping import resolve

WEBHOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
WEBHOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}


def stored(type_: str, **fields: Any) -> dict[str, Any]:
    """A call as Sluice stores it: camelCase, receivedAt, skew-corrected `…Z` timestamp."""
    return {
        "type": type_,
        "messageId": f"ajs-next-{type_}-77aa01",
        "anonymousId": "0f3c2c1e-58a9-4b1e-9a1b-2b2f5f1a9d10",
        "userId": "user-1337",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.64.0"},
            "ip": "192.0.2.44",
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X)",
            "page": {"url": "https://app.example.com/signup", "path": "/signup", "title": "Join"},
        },
        "integrations": {},
        "originalTimestamp": "2021-08-17T15:21:15.201Z",
        "sentAt": "2021-08-17T15:21:15.230Z",
        "receivedAt": "2021-08-17T15:21:15.480Z",
        "timestamp": "2021-08-17T15:21:15.449Z",
        **fields,
    }


SIGNED_UP = stored("track", event="Signed Up", properties={"plan": "Pro", "seats": 5})
IDENTIFY = stored("identify", traits={"name": "Ada Lovelace", "email": "ada@example.com"})

# A mapping as a Segment user writes it: Slack ships no preset, so trigger and fields are theirs.
MAPPINGS = {
    "track": (
        'type = "track" and event = "Signed Up"',
        {
            "url": WEBHOOK,
            "text": {
                "@template": "{{userId}} signed up for {{properties.plan}} "
                "({{properties.seats}} seats) on {{context.page.url}}"
            },
            "channel": "growth",
        },
    ),
    "identify": (
        'type = "identify"',
        {
            "url": WEBHOOK,
            "text": {"@template": "*{{traits.name}}* <mailto:{{traits.email}}> {{traits.company}}"},
            "username": "Sluice",
            "icon_url": "https://example.com/sluice.png",
        },
    ),
}
EXPECTED = {
    "track": {
        "channel": "growth",
        "text": "user-1337 signed up for Pro (5 seats) on https://app.example.com/signup",
        "username": "Segment",
        "icon_url": "https://logo.clearbit.com/segment.com",
    },
    "identify": {
        "text": "*Ada Lovelace* <mailto:ada@example.com> ",
        "username": "Sluice",
        "icon_url": "https://example.com/sluice.png",
    },
}


def slack(**settings: Any) -> Slack:
    return Slack(Slack.parse_settings(settings))


@pytest.mark.parametrize(
    ("call", "event"), [("track", SIGNED_UP), ("identify", IDENTIFY)], ids=["track", "identify"]
)
def test_post_message(recorder: Recorder, call: str, event: dict[str, Any]) -> None:
    trigger, mapping = MAPPINGS[call]
    assert compile_trigger(trigger)(event)
    other = IDENTIFY if event is SIGNED_UP else SIGNED_UP
    assert not compile_trigger(trigger)(other)
    mapped = Mapped(event["messageId"], resolve(mapping, event), event)
    requests = slack(endpoint=recorder.base_url).build("postToChannel", [mapped])
    assert [r.message_ids for r in requests] == [(event["messageId"],)]

    (response,) = deliver(requests)

    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", WEBHOOK_PATH, {})
    assert {k: v for k, v in got.headers.items() if k not in TRANSPORT} == {
        "user-agent": "Segment (Actions)",
        "content-type": "application/json",
    }
    assert got.json() == EXPECTED[call]


def test_without_endpoint_the_request_goes_to_slack() -> None:
    (request,) = slack().build("postToChannel", [Mapped("m1", {"url": WEBHOOK, "text": "hi"}, {})])
    assert request.url == WEBHOOK
    assert msgspec.json.decode(request.body) == {
        "text": "hi",
        "username": "Segment",
        "icon_url": "https://logo.clearbit.com/segment.com",
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"url": WEBHOOK + "?bad=true", "text": "t"}, "Invalid Slack URL"),
        ({"url": "https://hooks.example.com/services/T0/B0/X", "text": "t"}, "Invalid Slack URL"),
        ({"text": "t"}, "Invalid Slack URL"),
        ({"url": WEBHOOK}, "`text` is required"),
    ],
    ids=["query-string", "not-slack", "no-url", "no-text"],
)
def test_unusable_payloads_are_refused(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slack().build("postToChannel", [Mapped("m1", payload, {})])


def test_declaration() -> None:
    assert load("slack") is Slack
    assert (Slack.name, tuple(Slack.aliases)) == ("Slack (Actions)", ("Actions Slack",))
    assert [(a.id, a.title) for a in Slack.actions.values()] == [("postToChannel", "Post Message")]
    assert Slack.presets == ()  # Segment ships no default subscription
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        Slack.parse_settings({"url": WEBHOOK})


@pytest.mark.parametrize(
    ("reply", "verdict", "reason", "retry_after"),
    [
        (Reply(200, b"ok", {"Content-Type": "text/html"}), Verdict.DELIVERED, "HTTP 200", None),
        (Reply(429, b"rate_limited", {"Retry-After": "1"}), Verdict.RETRY,
         "HTTP 429: rate_limited", 1.0),
        (Reply(500, b"rollup_error"), Verdict.RETRY, "HTTP 500: rollup_error", None),
        (Reply(404, b"channel_not_found"), Verdict.PARK, "HTTP 404: channel_not_found", None),
        (Reply(400, b"invalid_payload"), Verdict.PARK, "HTTP 400: invalid_payload", None),
        (Reply(403, b""), Verdict.PARK, "HTTP 403", None),
    ],
    ids=["200", "429", "500", "404", "400", "403-empty"],
)  # fmt: skip
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, reason: str, retry_after: float | None
) -> None:
    recorder.respond_with(reply)
    destination = slack(endpoint=recorder.base_url)
    payload = {"url": WEBHOOK, "text": "t"}
    (request,) = destination.build("postToChannel", [Mapped("m1", payload, {})])
    (response,) = deliver([request])
    outcome = destination.interpret(request, response)
    assert (outcome.verdict, outcome.reason) == (verdict, reason)
    assert outcome.retry_after_s == retry_after
