"""What happened to events, through the admin API: recent events, one event's trace, stats,
rejected items, parked events and a destination's timeline, checked against real deliveries to a
recording server and against what the CLI prints for the same store."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from admin_client import Api, sluice

from recorder import Recorder, Reply
from server import WRITE_KEY, SluiceServer, wait_for


@pytest.fixture(autouse=True)
def reset(api: Api) -> None:
    api.reset()


def send(server: SluiceServer, *items: dict[str, Any]) -> None:
    res = server.post("/v1/batch", {"batch": list(items)}, key=WRITE_KEY)
    assert res.status == 200, res.body


def track(event: str, message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": "user-1",
        "messageId": message_id or f"m-{uuid.uuid4()}",
        "properties": {"n": 1},
        **fields,
    }


def add_webhook(api: Api, recorder: Recorder, dest_id: str) -> None:
    body = {
        "id": dest_id,
        "type": "webhook",
        "sources": ["web"],
        "settings": {"urls": [f"{recorder.base_url}/{dest_id}"]},
        "delivery": {"retry_window_s": 3600},
    }
    api.ok(api.post("/destinations", body), 201)


def test_recent_events_newest_first_with_filters(api: Api, admin_server: SluiceServer) -> None:
    name = f"Event {uuid.uuid4()}"
    ids = [f"e{i}-{uuid.uuid4()}" for i in range(3)]
    send(admin_server, *(track(name, message_id) for message_id in ids))
    send(admin_server, {"type": "identify", "userId": "user-1", "messageId": f"i-{name}"})

    found = api.ok(api.get("/events", query={"event": name}))["events"]
    assert [e["messageId"] for e in found] == ids[::-1]
    newest = found[0]
    assert newest["source"] == "web" and newest["type"] == "track" and newest["event"] == name
    assert newest["payload"]["messageId"] == ids[2]
    assert newest["payload"]["properties"] == {"n": 1}
    assert newest["receivedAt"] == newest["payload"]["receivedAt"]
    assert found[0]["seq"] > found[1]["seq"] > found[2]["seq"]

    limited = api.ok(api.get("/events", query={"event": name, "limit": "2"}))["events"]
    assert [e["messageId"] for e in limited] == [ids[2], ids[1]]
    after = api.ok(api.get("/events", query={"event": name, "after": str(found[2]["seq"])}))
    assert [e["messageId"] for e in after["events"]] == [ids[2], ids[1]]
    identify = api.ok(api.get("/events", query={"type": "identify", "source": "web", "limit": "1"}))
    assert [e["messageId"] for e in identify["events"]] == [f"i-{name}"]
    assert api.ok(api.get("/events", query={"event": name, "source": "app"})) == {"events": []}

    for query, message in (
        ({"limit": "0"}, "limit: Expected an integer from 1 to 1000, got 0"),
        ({"limit": "ten"}, "limit: Expected an integer, got 'ten'"),
        ({"after": "-1"}, f"after: Expected an integer from 0 to {2**63 - 1}, got -1"),
    ):
        res = api.get("/events", query=query)
        assert res.status == 400
        assert res.json()["message"] == message


def test_trace_of_an_event_delivered_to_a_destination(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    add_webhook(api, recorder, "hook")
    message_id = f"trace-{uuid.uuid4()}"
    send(admin_server, track("Order Completed", message_id))
    (request,) = recorder.wait_for(1)
    assert request.path == "/hook" and request.json()["messageId"] == message_id

    def delivered() -> dict[str, Any] | None:
        report = api.ok(api.get(f"/events/{message_id}/trace"))
        return report if report["found"][0]["destinations"][0]["status"] == "delivered" else None

    report = wait_for(delivered, what="the delivery in the trace")
    (found,) = report["found"]
    assert report["messageId"] == message_id
    assert found["source"] == "web" and found["type"] == "track"
    assert found["event"] == "Order Completed"
    (hop,) = found["destinations"]
    assert hop["destination"] == "hook" and hop["type"] == "webhook" and hop["attempts"] == 1
    cli = json.loads(sluice(admin_server.data_dir, "trace", message_id, "--json").stdout)
    assert report == cli

    res = api.get("/events/never-sent/trace")
    assert res.status == 404
    assert res.json() == {
        "code": "not_found",
        "message": "No stored event has messageId 'never-sent' (rejected or deduplicated?)",
    }


def test_trace_of_a_message_id_with_a_slash(api: Api, admin_server: SluiceServer) -> None:
    message_id = f"a/b-{uuid.uuid4()}"
    send(admin_server, track("Slashed", message_id))
    report = api.ok(api.get(f"/events/{message_id.replace('/', '%2F')}/trace"))
    assert report["found"][0]["messageId"] == message_id


def test_stats_are_what_sluice_status_json_shows(api: Api, admin_server: SluiceServer) -> None:
    send(admin_server, track("Counted"))

    def same() -> dict[str, Any] | None:
        cli = json.loads(sluice(admin_server.data_dir, "status", "--json").stdout)
        return cli if api.ok(api.get("/stats")) == cli else None

    stats = wait_for(same, timeout=15, what="the API and the CLI to agree")
    assert stats["sources"]["web"]["stored"] >= 1
    assert stats["log_end"] >= 1


def test_rejected_items_with_their_reason(api: Api, admin_server: SluiceServer) -> None:
    marker = f"no-event-{uuid.uuid4()}"
    res = admin_server.post(
        "/v1/batch", {"batch": [{"type": "track", "userId": marker}]}, key=WRITE_KEY
    )
    assert res.status == 200
    found = api.ok(api.get("/rejected", query={"source": "web", "limit": "5"}))["rejected"]
    newest = found[0]
    assert newest["reason"] == "missing_event" and newest["source"] == "web"
    assert marker in newest["item"]
    cli = sluice(admin_server.data_dir, "rejected", "--json", "--source", "web", "--limit", "5")
    assert [json.loads(line) for line in cli.stdout.splitlines()] == found[::-1]
    assert api.get("/rejected", query={"limit": "1001"}).status == 400


def test_parked_events_are_listed_and_retried(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(400, b'{"error": "bad payload"}'))
    add_webhook(api, recorder, "parkhook")
    first = f"park-{uuid.uuid4()}"
    send(admin_server, track("Parked", first))

    def parked() -> list[dict[str, Any]]:
        res = api.get("/parked", query={"destination": "parkhook"})
        return list(api.ok(res)["parked"])

    (item,) = wait_for(parked, what="the parked event")
    assert item["messageId"] == first and item["destination"] == "parkhook"
    assert item["state"] == "parked" and item["attempts"] == 1
    assert item["reason"] == "HTTP 400"
    assert item["request"]["url"] == f"{recorder.base_url}/parkhook"
    assert item["response"]["status"] == 400
    cli = sluice(admin_server.data_dir, "parked", "list", "--json", "--destination", "parkhook")
    assert [json.loads(line) for line in cli.stdout.splitlines()] == [item]
    by_message = api.ok(api.get("/parked", query={"message_id": first}))["parked"]
    assert by_message == [item]

    recorder.respond_with(Reply(200))
    assert api.ok(api.post("/parked/retry", {"ids": [item["id"]]})) == {"queued": 1}
    wait_for(lambda: len(recorder.requests) == 2, what="the resend")
    assert recorder.requests[1].json()["messageId"] == first
    wait_for(lambda: not parked(), what="the event to leave the parked list")
    resent = api.ok(api.get("/parked", query={"destination": "parkhook", "state": "resent"}))
    assert [p["id"] for p in resent["parked"]] == [item["id"]]
    trace = api.ok(api.get(f"/events/{first}/trace"))
    assert trace["found"][0]["destinations"][0]["status"] == "delivered_after_resend"

    # Retry by destination: every parked event of it.
    recorder.respond_with(Reply(400))
    second = f"park-{uuid.uuid4()}"
    send(admin_server, track("Parked", second))
    (again,) = wait_for(parked, what="the second parked event")
    assert again["messageId"] == second
    recorder.respond_with(Reply(200))
    assert api.ok(api.post("/parked/retry", {"destination": "parkhook"})) == {"queued": 1}
    wait_for(lambda: recorder.requests[-1].json()["messageId"] == second, what="the resend")


def test_parked_requests_that_are_not_valid(api: Api) -> None:
    for body, field in (({}, "ids"), ({"ids": "1"}, "ids"), ({"ids": [1], "x": 1}, "")):
        res = api.post("/parked/retry", body)
        assert res.status == 422, body
        assert res.json()["field"] == field, res.json()
    res = api.get("/parked", query={"state": "lost"})
    assert res.status == 400
    assert res.json()["field"] == "state"


def test_destination_timeline_counts_each_minute(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(lambda r: Reply(400) if r.json()["event"] == "Refused" else Reply(200))
    add_webhook(api, recorder, "timehook")
    drop_tests = {"title": "No tests", "if": "event = 'Test'", "actions": [{"type": "drop"}]}
    api.ok(api.patch("/destinations/timehook", {"filters": [drop_tests]}))
    send(admin_server, track("Timed"), track("Timed"), track("Timed"))
    send(admin_server, track("Test"), track("Refused"))

    def settled() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = api.ok(
            api.get("/destinations/timehook/timeline", query={"minutes": "5"})
        )
        totals = {k: sum(m[k] for m in found) for k in ("delivered", "filtered", "parked")}
        return found if totals == {"delivered": 3, "filtered": 1, "parked": 1} else None

    minutes = wait_for(settled, what="the timeline to count every event")
    # Every minute of the window, one minute apart, the current one last, empty ones as zeros.
    assert len(minutes) == 5
    starts = [datetime.fromisoformat(m["minute"]) for m in minutes]
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(starts))
    assert all(s.second == 0 and s.microsecond == 0 for s in starts)
    # The current minute (or, read just before the clock turned, the one before now's).
    assert starts[-1] <= datetime.now(UTC) < starts[-1] + timedelta(minutes=2)
    assert all(set(m) == {"minute", "delivered", "filtered", "parked", "retrying"} for m in minutes)
    assert all(m["retrying"] == 0 for m in minutes)
    stats = api.ok(api.get("/stats"))["destinations"]["timehook"]
    assert (stats["delivered"], stats["filtered"], stats["parked_total"]) == (3, 1, 1)

    assert len(api.ok(api.get("/destinations/timehook/timeline"))) == 60  # the default hour
    assert api.get("/destinations/nohook/timeline").status == 404
    for bad in ("0", "10081", "x"):
        res = api.get("/destinations/timehook/timeline", query={"minutes": bad})
        assert res.status == 400, bad
        assert res.json()["field"] == "minutes"


def test_retrying_events_are_listed_retried_now_and_parked(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    stuck = f"retry-{uuid.uuid4()}"
    flaky = f"retry-{uuid.uuid4()}"
    failing = {stuck, flaky}
    recorder.respond_with(
        lambda r: (
            Reply(503, headers={"retry-after": "3600"})
            if r.json()["messageId"] in failing
            else Reply(200)
        )
    )
    add_webhook(api, recorder, "retryhook")
    send(admin_server, track("Retried", stuck), track("Retried", flaky), track("Fine"))

    def retrying() -> list[dict[str, Any]]:
        res = api.get("/retrying", query={"destination": "retryhook"})
        return list(api.ok(res)["retrying"])

    found = wait_for(lambda: len(retrying()) == 2 and retrying(), what="two retrying events")
    by_id = {r["messageId"]: r for r in found}
    item = by_id[stuck]
    assert (item["destination"], item["state"], item["attempts"]) == ("retryhook", "retrying", 1)
    assert item["lastError"] == "HTTP 503" and item["response"]["status"] == 503
    assert item["nextAttempt"] > item["firstFailure"]  # an hour away (Retry-After)
    cli = sluice(admin_server.data_dir, "retrying", "list", "--json", "--destination", "retryhook")
    assert [json.loads(line) for line in cli.stdout.splitlines()] == found
    assert api.post("/retrying/retry", {}).status == 422  # nothing named
    failing.discard(flaky)
    assert api.ok(api.post("/retrying/retry", {"messageIds": [flaky]})) == {"count": 1}
    wait_for(lambda: [r["messageId"] for r in retrying()] == [stuck], what="flaky delivered")
    assert api.ok(api.post("/retrying/park", {"destination": "retryhook", "all": True})) == {
        "count": 1
    }
    assert retrying() == []
    parked = api.ok(api.get("/parked", query={"destination": "retryhook"}))["parked"]
    assert [(p["messageId"], p["reason"]) for p in parked] == [
        (stuck, "parked_by_operator: HTTP 503")
    ]
