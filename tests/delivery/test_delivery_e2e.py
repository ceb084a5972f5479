"""The delivery engine end to end: `sluice serve` delivering to local HTTP servers.

Every test runs the real server (collector + delivery worker) and real destinations pointed at a
recording server; failures are real (500s, 400s, refused connections).
"""

from __future__ import annotations

import json
import time

import pytest
from delivery_kit import (
    StartServer,
    add_destination,
    message_ids,
    send,
    sluice,
    trace,
    track,
    webhook,
)

from recorder import Recorder, Reply
from server import WRITE_KEY, SluiceServer, wait_for


@pytest.fixture
def server(start_server: StartServer) -> SluiceServer:
    return start_server({"SLUICE_WORKERS": "1"})


def test_every_event_is_delivered_and_traced(server: SluiceServer, recorder: Recorder) -> None:
    add_destination(server, webhook("hook", recorder))
    ids = [f"m-{i}" for i in range(20)]
    send(server, *(track(i) for i in ids))
    got = recorder.wait_for(20)
    assert sorted(message_ids(got)) == sorted(ids)
    assert all(r.path == "/hook" and r.method == "POST" for r in got)
    hop = trace(server, ids[0])["hook"]
    assert hop["status"] == "delivered" and hop["attempts"] == 1


def test_outage_delays_delivery_and_loses_nothing(server: SluiceServer, recorder: Recorder) -> None:
    add_destination(server, webhook("hook", recorder))
    recorder.stop()  # connections refused
    ids = [f"out-{i}" for i in range(10)]
    send(server, *(track(i) for i in ids))
    wait_for(
        lambda: trace(server, ids[0])["hook"]["status"] == "retrying", timeout=15, what="retrying"
    )
    hop = trace(server, ids[0])["hook"]
    assert "Connect" in hop["last_error"] or "refused" in hop["last_error"].lower()
    recorder.start()
    got = recorder.wait_for(10, timeout=30)
    assert sorted(message_ids(got)) == sorted(ids)  # each exactly once: nothing was answered
    wait_for(lambda: trace(server, ids[-1])["hook"]["status"] == "delivered", timeout=10)


def test_server_errors_retry_then_succeed(server: SluiceServer, recorder: Recorder) -> None:
    answers = iter([Reply(500), Reply(503, headers={"retry-after": "1"})])
    recorder.respond_with(lambda _r: next(answers, Reply(200)))
    add_destination(server, webhook("hook", recorder))
    send(server, track("flaky"))
    got = recorder.wait_for(3, timeout=30)
    assert message_ids(got) == ["flaky"] * 3
    wait_for(lambda: trace(server, "flaky")["hook"]["status"] == "delivered", timeout=10)
    assert trace(server, "flaky")["hook"]["attempts"] == 3


def test_client_errors_park_with_the_exchange_and_can_be_retried(
    server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(400, {"error": "bad payload"}))
    add_destination(server, webhook("hook", recorder))
    send(server, track("bad-1"), track("bad-2"))
    recorder.wait_for(2)
    wait_for(lambda: trace(server, "bad-2")["hook"]["status"] == "parked", timeout=10)
    hop = trace(server, "bad-1")["hook"]
    assert hop["reason"] == "HTTP 400"
    assert hop["request"]["method"] == "POST" and hop["request"]["url"].endswith("/hook")
    assert json.loads(hop["request"]["body"])["messageId"] == "bad-1"
    assert hop["response"]["status"] == 400 and "bad payload" in hop["response"]["body"]
    listed = [json.loads(line) for line in sluice(server, "parked", "list", "--json").splitlines()]
    assert sorted(p["messageId"] for p in listed) == ["bad-1", "bad-2"]
    # The destination is fixed; the operator sends the parked events again.
    recorder.respond_with(Reply(200))
    recorder.clear()
    assert "2 parked" in sluice(server, "parked", "retry", "--destination", "hook")
    got = recorder.wait_for(2, timeout=15)
    assert sorted(message_ids(got)) == ["bad-1", "bad-2"]
    wait_for(lambda: sluice(server, "parked", "list", "--json").strip() == "", timeout=10)


def test_events_past_the_retry_window_are_parked(server: SluiceServer, recorder: Recorder) -> None:
    recorder.respond_with(Reply(500))
    add_destination(server, webhook("hook", recorder, delivery={"retry_window_s": 2}))
    send(server, track("old"))
    wait_for(lambda: trace(server, "old")["hook"]["status"] == "parked", timeout=30)
    hop = trace(server, "old")["hook"]
    assert hop["reason"].startswith("retry_window_exceeded: HTTP 500")
    assert hop["attempts"] >= 2


def test_a_dead_destination_does_not_hold_up_a_healthy_one(
    server: SluiceServer, recorder: Recorder
) -> None:
    dead = Recorder()
    dead.stop()
    try:
        add_destination(server, webhook("dead", dead))
        add_destination(server, webhook("healthy", recorder))
        for batch in range(5):
            send(server, *(track(f"h-{batch}-{i}") for i in range(20)))
        got = recorder.wait_for(100, timeout=15)
        assert len(set(message_ids(got))) == 100
        assert trace(server, "h-0-0")["dead"]["status"] == "retrying"
    finally:
        dead.stop()


def test_routing_decisions_are_explained(server: SluiceServer, recorder: Recorder) -> None:
    add_destination(
        server,
        webhook(
            "hook",
            recorder,
            filters=[
                {"title": "no tests", "if": "properties.test = true", "actions": [{"type": "drop"}]}
            ],
        ),
    )
    send(
        server,
        track("off", integrations={"Webhooks": False}),
        track("all-off", integrations={"All": False}),
        track("device", _metadata={"bundled": ["Segment.io", "Webhooks"]}),
        track("dropped", properties={"test": True}),
        track("sent"),
    )
    got = recorder.wait_for(1)
    time.sleep(0.5)
    assert message_ids(recorder.requests) == ["sent"]
    assert got[0].json()["event"] == "Order Completed"
    expected = {
        "off": "integrations_disabled",
        "all-off": "integrations_disabled",
        "device": "sent_from_device",
        "dropped": "filter:no tests",
    }
    for message_id, reason in expected.items():
        hop = trace(server, message_id)["hook"]
        assert (hop["status"], hop["reason"]) == ("filtered", reason)
    status = json.loads(sluice(server, "status", "--json"))["destinations"]["hook"]
    assert status["delivered"] == 1 and status["filtered"] == 4


def test_real_client_to_webhook(server: SluiceServer, recorder: Recorder) -> None:
    from segment.analytics.client import Client

    add_destination(server, webhook("hook", recorder))
    client = Client(WRITE_KEY, host=server.base_url, sync_mode=True, max_retries=1)
    client.identify("user-9", {"email": "u9@example.com"}, message_id="py-identify")
    client.track("user-9", "Signed Up", {"plan": "pro"}, message_id="py-track")
    client.page("user-9", "Docs", "Home", message_id="py-page")
    got = {r.json()["messageId"]: r.json() for r in recorder.wait_for(3)}
    assert got["py-identify"]["traits"] == {"email": "u9@example.com"}
    assert got["py-track"]["properties"] == {"plan": "pro"}
    assert got["py-page"]["type"] == "page"
    assert got["py-track"]["context"]["library"]["name"] == "analytics-python"


def test_slow_answers_time_out_and_are_retried(server: SluiceServer, recorder: Recorder) -> None:
    answers = iter([Reply(200, delay_s=2.5)])
    recorder.respond_with(lambda _r: next(answers, Reply(200)))
    add_destination(server, webhook("hook", recorder, delivery={"timeout_s": 1}))
    send(server, track("slow"))
    got = recorder.wait_for(2, timeout=20)
    assert message_ids(got) == ["slow", "slow"]  # the timed-out attempt, then the retry
    wait_for(lambda: trace(server, "slow")["hook"]["status"] == "delivered", timeout=10)
    assert trace(server, "slow")["hook"]["attempts"] == 2


def test_429_retry_after_is_honoured(server: SluiceServer, recorder: Recorder) -> None:
    answers = iter([Reply(429, headers={"retry-after": "3"})])
    recorder.respond_with(lambda _r: next(answers, Reply(200)))
    add_destination(server, webhook("hook", recorder))
    send(server, track("limited"))
    first, second = recorder.wait_for(2, timeout=20)
    assert second.at - first.at >= 2.9
    wait_for(lambda: trace(server, "limited")["hook"]["status"] == "delivered", timeout=10)
