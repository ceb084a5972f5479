"""Webhooks (classic): every call type, as stored, POSTed whole to each URL and signed."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import msgspec
import pytest

from destination_kit import deliver, presets_matching
from recorder import Recorder, Reply
from sluice.destinations.base import Mapped, Verdict
from sluice.destinations.registry import load
from sluice.destinations.webhook import Webhook, WebhookSettings
from sluice.fql import compile_trigger

SECRET = "whsec-3f9a"
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}
CONTEXT = {
    "library": {"name": "analytics.js", "version": "next-1.64.0"},
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15",
    "page": {
        "path": "/checkout/thanks",
        "referrer": "https://shop.example.com/cart",
        "title": "Thank you — Fjällräven Shop",
        "url": "https://shop.example.com/checkout/thanks?utm_source=news",
    },
    "locale": "sv-SE",
}


def stored(type_: str, **fields: Any) -> dict[str, Any]:
    """An event as Sluice stores it (camelCase, receivedAt, skew-corrected `…Z` timestamps)."""
    return {
        "type": type_,
        "messageId": f"ajs-next-{type_}-4c1f0e2b",
        "anonymousId": "6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11",
        "userId": "user-42",
        "context": CONTEXT,
        "integrations": {},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
        **fields,
    }


EVENTS = {
    "track": stored(
        "track",
        event="Order Completed",
        properties={
            "order_id": "50314b8e9bcf000000000000",
            "affiliation": "Google Store",
            "total": 27.5,
            "revenue": 25.0,
            "shipping": 3,
            "tax": 2,
            "discount": 2.5,
            "coupon": "hasbros",
            "currency": "USD",
            "products": [
                {
                    "product_id": "507f1f77bcf86cd799439011",
                    "sku": "45790-32",
                    "name": "Monopoly",
                    "price": 19,
                    "quantity": 1,
                    "category": "Games",
                    "position": 1,
                },
                {
                    "product_id": "505bd76785ebb509fc183733",
                    "sku": "46493-32",
                    "name": "Uno",
                    "price": 3,
                    "quantity": 2,
                    "category": "Games",
                    "position": 2,
                },
            ],
        },
    ),
    "identify": stored(
        "identify", traits={"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"}
    ),
    "page": stored(
        "page", name="Thanks", properties={"path": "/checkout/thanks", "title": "Thank you"}
    ),
    "screen": stored("screen", name="Cart", properties={"items": 3}),
    "group": stored("group", groupId="acme-inc", traits={"name": "Acme", "employees": 329}),
    "alias": stored("alias", previousId="6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11"),
}


def preset_work(event: dict[str, Any]) -> list[tuple[str, Mapped]]:
    """What Webhook's presets make of the event: (action, mapped) per matching preset."""
    return [(p.action, m) for p, m in presets_matching(Webhook, event)]


def app_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers a destination chose (the HTTP client's own transport headers left out)."""
    return {k: v for k, v in headers.items() if k not in TRANSPORT}


def webhook(**settings: Any) -> Webhook:
    return Webhook(Webhook.parse_settings(settings))


@pytest.mark.parametrize("call", list(EVENTS), ids=list(EVENTS))
def test_every_call_is_posted_whole_to_every_url_and_signed(recorder: Recorder, call: str) -> None:
    event = EVENTS[call]
    destination = webhook(
        urls=[f"{recorder.base_url}/hooks/primary", f"{recorder.base_url}/hooks/backup?team=data"],
        headers={"Authorization": "Bearer 0f1e2d", "X-Team": "growth"},
        shared_secret=SECRET,
    )
    work = preset_work(event)
    assert [action for action, _ in work] == ["send"]
    requests = destination.build("send", [mapped for _, mapped in work])
    assert [r.message_ids for r in requests] == [(event["messageId"],)] * 2

    responses = deliver(requests)

    assert [r.status for r in responses] == [200, 200]
    first, second = recorder.wait_for(2)
    assert (first.method, first.path, first.query) == ("POST", "/hooks/primary", {})
    assert (second.method, second.path) == ("POST", "/hooks/backup")
    assert second.query == {"team": ["data"]}
    for got in (first, second):
        signature = hmac.new(SECRET.encode(), got.body, hashlib.sha1).hexdigest()
        assert app_headers(got.headers) == {
            "content-type": "application/json",
            "user-agent": "Segment.io/1.0",
            "authorization": "Bearer 0f1e2d",
            "x-team": "growth",
            "x-signature": signature,
        }
        assert got.json() == event
    assert first.body == second.body


def test_non_ascii_body_is_utf8_and_the_signature_covers_its_bytes(recorder: Recorder) -> None:
    event = stored("track", event="Köp genomfört", properties={"butik": "Göteborg ✓"})
    destination = webhook(urls=[f"{recorder.base_url}/h"], shared_secret=SECRET)
    deliver(destination.build("send", [mapped for _, mapped in preset_work(event)]))
    (got,) = recorder.wait_for(1)
    assert "Göteborg ✓".encode() in got.body
    assert got.headers["x-signature"] == hmac.new(SECRET.encode(), got.body, "sha1").hexdigest()
    assert got.json() == event


def test_without_a_secret_there_is_no_signature(recorder: Recorder) -> None:
    destination = webhook(urls=[f"{recorder.base_url}/h"])
    deliver(destination.build("send", [mapped for _, mapped in preset_work(EVENTS["identify"])]))
    (got,) = recorder.wait_for(1)
    assert app_headers(got.headers) == {
        "content-type": "application/json",
        "user-agent": "Segment.io/1.0",
    }


def test_custom_headers_override_the_defaults_case_insensitively() -> None:
    destination = webhook(urls=["https://hooks.example.com/a"], headers={"user-agent": "mine/2"})
    (request,) = destination.build("send", [Mapped("m1", {"a": 1}, {"a": 1})])
    assert dict(request.headers) == {"Content-Type": "application/json", "user-agent": "mine/2"}


def test_endpoint_is_the_url_when_no_urls_are_set(recorder: Recorder) -> None:
    destination = webhook(endpoint=f"{recorder.base_url}/only")
    requests = destination.build("send", [mapped for _, mapped in preset_work(EVENTS["page"])])
    assert [r.url for r in requests] == [f"{recorder.base_url}/only"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "at least one webhook URL"),
        ({"urls": [f"https://h.example.com/{i}" for i in range(6)]}, "length <= 5"),
        ({"urls": ["ftp://h.example.com/x"]}, "is not an http"),
        ({"urls": ["https://h.example.com"], "sharedSecrett": "x"}, "unknown field"),
    ],
    ids=["no-url", "six-urls", "not-http", "unknown-key"],
)
def test_invalid_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        Webhook.parse_settings(settings)


def test_settings_repr_hides_the_secret_and_header_values() -> None:
    settings = Webhook.parse_settings(
        {
            "urls": ["https://h.example.com"],
            "headers": {"Authorization": "Bearer t0k"},
            "shared_secret": SECRET,
        }
    )
    assert isinstance(settings, WebhookSettings)
    assert SECRET not in repr(settings) and "t0k" not in repr(settings)


def test_declaration() -> None:
    assert load("webhook") is Webhook
    assert (Webhook.name, Webhook.timeout_s) == ("Webhooks", 5.0)
    assert Webhook.any_request_delivers is True
    assert Webhook.actions["send"].max_batch == 1
    assert [(p.action, p.mapping) for p in Webhook.presets] == [("send", {"@path": "$"})]
    trigger = compile_trigger(Webhook.presets[0].trigger)
    assert all(trigger(event) for event in EVENTS.values())


@pytest.mark.parametrize(
    ("reply", "verdict", "retry_after"),
    [
        (Reply(200, b"ok"), Verdict.DELIVERED, None),
        (Reply(429, b"slow down", {"Retry-After": "7"}), Verdict.RETRY, 7.0),
        (Reply(500, b"oops"), Verdict.RETRY, None),
        (Reply(400, b"bad"), Verdict.PARK, None),
    ],
    ids=["200", "429", "500", "400"],
)
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, retry_after: float | None
) -> None:
    recorder.respond_with(reply)
    destination = webhook(urls=[f"{recorder.base_url}/h"])
    (request,) = destination.build("send", [Mapped("m1", EVENTS["track"], EVENTS["track"])])
    (response,) = deliver([request])
    outcome = destination.interpret(request, response)
    assert (outcome.verdict, outcome.retry_after_s) == (verdict, retry_after)
    assert outcome.reason == f"HTTP {reply.status}"


def test_timeout_and_refused_connections_retry(recorder: Recorder) -> None:
    destination = webhook(urls=[f"{recorder.base_url}/h"])
    (request,) = destination.build("send", [Mapped("m1", {"a": 1}, {"a": 1})])
    recorder.stop()
    (response,) = deliver([request])
    assert response.status == 0
    assert destination.interpret(request, response).verdict is Verdict.RETRY


def test_body_is_compact_json_of_the_mapped_payload() -> None:
    destination = webhook(urls=["https://h.example.com"])
    event = EVENTS["track"]
    (request,) = destination.build("send", [Mapped(event["messageId"], event, event)])
    assert json.loads(request.body) == event
    assert b": " not in request.body and b", " not in request.body
