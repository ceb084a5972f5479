"""Webhooks (Actions): mapped URL, method, headers and data; single events and JSON batches."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from destination_kit import deliver
from recorder import Recorder, Reply
from sluice.destinations.base import Mapped, Verdict
from sluice.destinations.registry import load
from sluice.destinations.webhook_actions import WebhookActions
from sluice.fql import compile_trigger
from sluice.mapping import resolve

SECRET = "whsec-7a1c"
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}
CONTEXT = {
    "library": {"name": "analytics-python", "version": "2.3.2"},
    "ip": "198.51.100.23",
    "userAgent": "python-requests/2.31.0",
    "page": {"url": "https://app.example.com/settings", "title": "Settings", "path": "/settings"},
}


def stored(type_: str, n: int = 1, **fields: Any) -> dict[str, Any]:
    """An event as Sluice stores it (camelCase, receivedAt, skew-corrected `…Z` timestamps)."""
    return {
        "type": type_,
        "messageId": f"api-2d8f{n:04d}",
        "userId": f"user-{n}",
        "anonymousId": f"anon-{n}",
        "context": CONTEXT,
        "integrations": {"All": True},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
        **fields,
    }


def signed_up(n: int) -> dict[str, Any]:
    return stored("track", n, event="Signed Up", properties={"type": "organic", "plan": "pro"})


def identify(n: int) -> dict[str, Any]:
    return stored("identify", n, traits={"email": f"u{n}@example.com", "name": "Grace Hopper"})


def mapped_by(trigger: str, mapping: dict[str, Any], events: list[dict[str, Any]]) -> list[Mapped]:
    """What one configured mapping makes of the events (the trigger picks, the mapping maps)."""
    matches = compile_trigger(trigger)
    return [Mapped(e["messageId"], resolve(mapping, e), e) for e in events if matches(e)]


def app_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in TRANSPORT}


def sha1(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def destination(**settings: Any) -> WebhookActions:
    return WebhookActions(WebhookActions.parse_settings(settings))


@pytest.mark.parametrize("make", [signed_up, identify], ids=["track", "identify"])
def test_default_data_is_the_whole_event(recorder: Recorder, make: Any) -> None:
    event = make(1)
    mapping = {
        "url": f"{recorder.base_url}/segment/events",
        "method": "POST",
        "headers": {"X-Source": {"@path": "$.context.library.name"}},
        "data": {"@path": "$."},
    }
    mapped = mapped_by('type = "track" or type = "identify"', mapping, [event])
    requests = destination(shared_secret=SECRET).build("send", mapped)
    assert [r.message_ids for r in requests] == [(event["messageId"],)]

    (response,) = deliver(requests)

    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("POST", "/segment/events", {})
    assert app_headers(got.headers) == {
        "user-agent": "Segment (Actions)",
        "x-source": "analytics-python",
        "content-type": "application/json",
        "x-signature": sha1(got.body),
    }
    assert got.json() == event


def test_custom_data_method_and_headers(recorder: Recorder) -> None:
    mapping = {
        "url": f"{recorder.base_url}/crm/contacts?upsert=1",
        "method": "PUT",
        "headers": {"Authorization": "Bearer crm-token", "Content-Type": "text/plain"},
        "data": {"email": {"@path": "$.traits.email"}, "id": {"@path": "$.userId"}, "x": None},
    }
    mapped = mapped_by('type = "identify"', mapping, [identify(7), signed_up(8)])
    deliver(destination().build("send", mapped))
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path, got.query) == ("PUT", "/crm/contacts", {"upsert": ["1"]})
    # The framework sets the JSON content type after the mapped headers, as Segment's does.
    assert app_headers(got.headers) == {
        "user-agent": "Segment (Actions)",
        "authorization": "Bearer crm-token",
        "content-type": "application/json",
    }
    assert got.json() == {"email": "u7@example.com", "id": "user-7", "x": None}


def test_batches_are_json_arrays_signed_over_their_first_event(recorder: Recorder) -> None:
    events = [signed_up(n) for n in range(1, 6)]
    mapping = {
        "url": f"{recorder.base_url}/bulk",
        "data": {"@path": "$.properties"},
        "enable_batching": True,
        "batch_size": 2,
    }
    requests = destination(shared_secret=SECRET).build(
        "send", mapped_by('type = "track"', mapping, events)
    )
    assert [list(r.message_ids) for r in requests] == [
        ["api-2d8f0001", "api-2d8f0002"],
        ["api-2d8f0003", "api-2d8f0004"],
        ["api-2d8f0005"],
    ]
    deliver(requests)
    got = recorder.wait_for(3)
    assert [(r.method, r.path) for r in got] == [("POST", "/bulk")] * 3
    assert [len(r.json()) for r in got] == [2, 2, 1]
    for request in got:
        body = request.json()
        assert body == [{"type": "organic", "plan": "pro"}] * len(body)
        assert request.headers["x-signature"] == sha1(compact(body[0]))
        assert request.headers["content-type"] == "application/json"


def test_batches_split_by_url_method_and_headers() -> None:
    events = [signed_up(n) for n in range(1, 5)]
    mapping = {
        "url": {"@template": "https://hooks.example.com/{{userId}}"},
        "method": "PATCH",
        "enable_batching": True,
    }
    events[1]["userId"] = events[3]["userId"] = "user-1"
    requests = destination().build("send", mapped_by('type = "track"', mapping, events))
    assert sorted((r.url, r.method, tuple(r.message_ids)) for r in requests) == [
        (
            "https://hooks.example.com/user-1",
            "PATCH",
            ("api-2d8f0001", "api-2d8f0002", "api-2d8f0004"),
        ),
        ("https://hooks.example.com/user-3", "PATCH", ("api-2d8f0003",)),
    ]


def test_batch_size_defaults_to_1000_and_is_capped_at_4000() -> None:
    events = [signed_up(n) for n in range(1, 4002)]
    build = destination().build
    batched = {"url": "https://h.example.com", "enable_batching": True}
    default = build("send", mapped_by('type = "track"', batched, events))
    capped = build("send", mapped_by('type = "track"', {**batched, "batch_size": 9000}, events))
    assert [len(r.message_ids) for r in default] == [1000, 1000, 1000, 1000, 1]
    assert [len(r.message_ids) for r in capped] == [4000, 1]
    assert WebhookActions.actions["send"].max_batch == 4000


def test_endpoint_replaces_scheme_and_host(recorder: Recorder) -> None:
    mapping = {"url": "https://webhooks.example.com/in/segment?k=v", "data": {"@path": "$.event"}}
    deliver(
        destination(endpoint=recorder.base_url).build(
            "send", mapped_by('event = "Signed Up"', mapping, [signed_up(3)])
        )
    )
    (got,) = recorder.wait_for(1)
    assert (got.path, got.query, got.body) == ("/in/segment", {"k": ["v"]}, b'"Signed Up"')


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"method": "POST"}, "`url` must be an http"),
        ({"url": "https://h.example.com", "method": "GET"}, "`method` must be one of"),
        ({"url": "https://h.example.com", "headers": "X-A: 1"}, "`headers` must be an object"),
    ],
    ids=["no-url", "get", "headers-not-object"],
)
def test_unusable_payloads_are_refused(mapping: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        destination().build("send", [Mapped("m1", mapping, signed_up(1))])


def test_declaration() -> None:
    assert load("webhook-actions") is WebhookActions
    assert WebhookActions.name == "Webhooks (Actions)"
    assert "Webhook" in WebhookActions.aliases
    assert list(WebhookActions.actions) == ["send"]
    assert WebhookActions.presets == ()  # Segment ships none
    assert "whsec" not in repr(WebhookActions.parse_settings({"shared_secret": SECRET}))


@pytest.mark.parametrize(
    ("reply", "verdict", "retry_after"),
    [
        (Reply(200, b"ok"), Verdict.DELIVERED, None),
        (Reply(429, b"", {"Retry-After": "30"}), Verdict.RETRY, 30.0),
        (Reply(503, b"down"), Verdict.RETRY, None),
        (Reply(400, b"no"), Verdict.PARK, None),
    ],
    ids=["200", "429", "503", "400"],
)
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, retry_after: float | None
) -> None:
    recorder.respond_with(reply)
    dest = destination()
    (request,) = dest.build("send", [Mapped("m1", {"url": f"{recorder.base_url}/x"}, {"a": 1})])
    (response,) = deliver([request])
    outcome = dest.interpret(request, response)
    assert (outcome.verdict, outcome.retry_after_s) == (verdict, retry_after)
