"""Per-event retries off the cursor, end to end: `sluice serve` delivering to a recording server.

One event that fails forever must not hold back the others; a failure is visible (trace,
status, `sluice retrying`) from the moment it happens; a destination-wide outage pauses the
cursor instead of filling the retry set; operators retry now or park; kill -9 forgets nothing.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from delivery_kit import (
    StartServer,
    add_destination,
    message_ids,
    send,
    sluice,
    status,
    store_env,
    trace,
    track,
    webhook,
)

from recorder import Recorded, Recorder, Reply
from server import SluiceServer, wait_for
from sluice.store.base import ConfigObject


@pytest.fixture
def server(start_server: StartServer) -> SluiceServer:
    return start_server({"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "0"})


def failing(*message_ids: str, status: int = 500) -> Any:
    """A responder: `status` for these events, 200 for every other."""

    def respond(request: Recorded) -> Reply:
        return Reply(status) if request.json()["messageId"] in message_ids else Reply(200)

    return respond


def test_one_event_failing_forever_does_not_hold_back_the_others(
    server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(failing("poison"))
    add_destination(server, webhook("hook", recorder))
    send(server, track("before"), track("poison"), *(track(f"after-{i}") for i in range(15)))
    started = time.monotonic()
    expected = {"before", *(f"after-{i}" for i in range(15))}
    wait_for(lambda: expected <= set(message_ids(recorder.requests)), timeout=10)
    assert time.monotonic() - started < 5  # delivered at once, not after the poison's retries
    # Retrying from its first failure, with the exchange that failed.
    hop = trace(server, "poison")["hook"]
    assert hop["status"] == "retrying", hop
    assert hop["attempts"] >= 1 and hop["last_error"] == "HTTP 500"
    assert hop["request"]["url"].endswith("/hook") and hop["response"]["status"] == 500
    assert hop["next_attempt"] > hop["first_failure"]
    stats = status(server, "hook")
    assert (stats["retrying"], stats["lag"], stats["state"]["state"]) == (1, 0, "running")
    # Later events keep flowing while it retries.
    send(server, track("later"))
    wait_for(lambda: "later" in message_ids(recorder.requests), timeout=5)
    listed = [msgspec.json.decode(line) for line in sluice(server, "retrying", "list", "--json")
              .splitlines()]  # fmt: skip
    assert [(r["destination"], r["messageId"], r["state"]) for r in listed] == [
        ("hook", "poison", "retrying")
    ]
    wait_for(lambda: trace(server, "poison")["hook"]["attempts"] >= 3, timeout=15)
    assert "1 event(s) parked" in sluice(server, "retrying", "park", "poison")
    hop = trace(server, "poison")["hook"]
    assert hop["status"] == "parked" and hop["reason"] == "parked_by_operator: HTTP 500"
    assert sluice(server, "retrying", "list", "--json") == ""
    # Each other event was delivered once.
    others = [m for m in message_ids(recorder.requests) if m != "poison"]
    assert sorted(others) == sorted([*expected, "later"])


def test_a_permanent_error_is_parked_at_once_next_to_a_retrying_event(
    server: SluiceServer, recorder: Recorder
) -> None:
    def respond(request: Recorded) -> Reply:
        return {"down": Reply(503), "bad": Reply(400, {"error": "no"})}.get(
            request.json()["messageId"], Reply(200)
        )

    recorder.respond_with(respond)
    add_destination(server, webhook("hook", recorder))
    send(server, track("down"), track("bad"), track("fine"))
    started = time.monotonic()
    wait_for(lambda: server.store.parked_for_message("bad"), timeout=10, interval=0.02)
    assert time.monotonic() - started < 5  # not when its step-mate's retries end
    assert trace(server, "bad")["hook"]["status"] == "parked"
    assert trace(server, "down")["hook"]["status"] == "retrying"
    assert trace(server, "fine")["hook"]["status"] == "delivered"


def test_retry_now_sends_a_retrying_event_at_once(server: SluiceServer, recorder: Recorder) -> None:
    answers = iter([Reply(503, headers={"retry-after": "3600"})])
    recorder.respond_with(lambda _r: next(answers, Reply(200)))
    add_destination(server, webhook("hook", recorder))
    send(server, track("later"))
    wait_for(lambda: trace(server, "later")["hook"]["status"] == "retrying", timeout=10)
    due = datetime.fromisoformat(trace(server, "later")["hook"]["next_attempt"])
    assert due.timestamp() - time.time() > 1800  # Retry-After: an hour away
    assert "1 retrying event(s) due now." in sluice(server, "retrying", "retry", "later")
    got = recorder.wait_for(2, timeout=10)
    assert message_ids(got) == ["later", "later"]
    wait_for(lambda: trace(server, "later")["hook"]["status"] == "delivered", timeout=10)
    assert trace(server, "later")["hook"]["attempts"] == 2


def test_an_outage_pauses_the_cursor_and_recovery_resumes_it(
    server: SluiceServer, recorder: Recorder
) -> None:
    add_destination(server, webhook("hook", recorder, delivery={"concurrency": 4}))
    recorder.stop()  # connections refused: every request fails
    ids = [f"out-{i}" for i in range(200)]
    send(server, *(track(i) for i in ids[:100]))
    send(server, *(track(i) for i in ids[100:]))
    wait_for(lambda: status(server, "hook")["state"]["state"] == "paused", timeout=20)
    stats = status(server, "hook")
    assert "circuit open" in stats["state"]["detail"]
    time.sleep(3)  # a probe or two
    stats = status(server, "hook")
    # Only what was in flight when the circuit opened (plus failed probes) is in the set; the
    # rest waits behind the paused cursor.
    assert stats["retrying"] <= 12, stats
    waiting = trace(server, ids[-1])["hook"]  # probes took a few from the front, not this one
    assert waiting["status"] == "pending" and "circuit open" in waiting["paused"]
    recorder.start()
    got = recorder.wait_for(200, timeout=90)
    assert sorted(message_ids(got)) == sorted(ids)  # nothing answered before: each once
    wait_for(lambda: status(server, "hook")["state"]["state"] == "running", timeout=10)
    wait_for(lambda: status(server, "hook")["retrying"] == 0, timeout=10)


def test_ordering_per_user_holds_a_users_later_events_behind_its_retrying_one(
    server: SluiceServer, recorder: Recorder
) -> None:
    failures = {"a1": 3}  # a1 fails three times (about 7 s of backoff), then is accepted
    lock = threading.Lock()

    def respond(request: Recorded) -> Reply:
        message_id = request.json()["messageId"]
        with lock:
            if failures.get(message_id, 0) > 0:
                failures[message_id] -= 1
                return Reply(500)
        return Reply(200)

    recorder.respond_with(respond)
    add_destination(
        server, webhook("hook", recorder, delivery={"ordering": "per_user", "concurrency": 8})
    )
    send(server, track("a1", userId="a"), track("b1", userId="b"), track("a2", userId="a"))
    wait_for(lambda: {"b1"} <= set(message_ids(recorder.requests)), timeout=5)
    send(server, track("b2", userId="b"), track("a3", userId="a"), track("b3", userId="b"))
    wait_for(lambda: {"b2", "b3"} <= set(message_ids(recorder.requests)), timeout=5)
    # While a1 retries, a2 and a3 wait (not sent); b flows.
    wait_for(
        lambda: (
            {r.message_id for _, r in server.store.retrying("hook", states=("waiting",))}
            == {"a2", "a3"}
        ),
        timeout=5,
    )
    assert "a2" not in message_ids(recorder.requests)
    wait_for(lambda: {"a1", "a2", "a3"} <= set(message_ids(recorder.requests)), timeout=30)
    delivered_a = [
        r.json()["messageId"]
        for r in recorder.requests
        if r.json()["userId"] == "a" and r.json()["messageId"] not in ("a1",)
    ]
    first_a1_ok = max(i for i, m in enumerate(message_ids(recorder.requests)) if m == "a1")
    first_a2 = message_ids(recorder.requests).index("a2")
    assert first_a2 > first_a1_ok  # a2 only after a1 was accepted
    assert delivered_a == ["a2", "a3"]
    assert message_ids(recorder.requests).count("a1") == 4
    wait_for(lambda: trace(server, "a3")["hook"]["status"] == "delivered", timeout=10)


def test_a_full_retry_set_pauses_the_cursor(server: SluiceServer, recorder: Recorder) -> None:
    recorder.respond_with(failing("p1", "p2"))
    add_destination(server, webhook("hook", recorder, delivery={"max_retrying": 2}))
    send(server, track("p1"), track("p2"))
    wait_for(lambda: status(server, "hook")["retrying"] == 2, timeout=10)
    wait_for(lambda: status(server, "hook")["state"]["state"] == "paused", timeout=10)
    assert "retry set full" in status(server, "hook")["state"]["detail"]
    send(server, track("stuck"))
    time.sleep(1.5)
    assert "stuck" not in message_ids(recorder.requests)
    assert status(server, "hook")["lag"] == 1
    assert "2 event(s) parked" in sluice(server, "retrying", "park", "--all")
    wait_for(lambda: "stuck" in message_ids(recorder.requests), timeout=10)
    wait_for(lambda: status(server, "hook")["state"]["state"] == "running", timeout=10)


def test_a_settings_change_applies_to_retries(server: SluiceServer, recorder: Recorder) -> None:
    recorder.respond_with(lambda r: Reply(500) if r.path == "/old" else Reply(200))
    doc = webhook("hook", recorder)
    doc["settings"] = {"urls": [f"{recorder.base_url}/old"]}
    add_destination(server, doc)
    send(server, track("moved"))
    wait_for(lambda: trace(server, "moved")["hook"]["status"] == "retrying", timeout=10)
    doc["settings"] = {"urls": [f"{recorder.base_url}/new"]}
    server.store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(doc)))
    sluice(server, "retrying", "retry")
    wait_for(lambda: trace(server, "moved")["hook"]["status"] == "delivered", timeout=15)
    assert [r.path for r in recorder.requests if r.json()["messageId"] == "moved"][-1] == "/new"


def test_deleting_a_destination_drops_its_retry_set_after_it_is_gone(
    server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(500))
    add_destination(server, webhook("hook", recorder))
    send(server, track("x"))
    wait_for(lambda: server.store.retry_counts().get("hook"), timeout=10)
    server.store.replace_config([o for o in server.store.list_config() if o.kind != "destination"])
    wait_for(lambda: server.store.retry_destinations() == [], timeout=10)
    seen = len(recorder.requests)
    time.sleep(1.5)
    assert len(recorder.requests) == seen  # its consumer stopped first: nothing sent after


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_forgets_no_retrying_event(
    request: pytest.FixtureRequest,
    start_server: StartServer,
    recorder: Recorder,
    tmp_path: Path,
    backend: str,
) -> None:
    data_dir = tmp_path / "node"
    env = store_env(request, backend, data_dir)
    server = start_server(env, data_dir=data_dir)
    recorder.respond_with(failing("poison", "poison-2"))
    add_destination(server, webhook("hook", recorder))
    send(server, track("poison"), *(track(f"ok-{i}") for i in range(20)), track("poison-2"))
    wait_for(lambda: len(server.store.retrying("hook")) == 2, timeout=10)
    before = trace(server, "poison")["hook"]
    server.kill()
    server.start()
    wait_for(lambda: trace(server, "poison")["hook"]["attempts"] > before["attempts"], timeout=20)
    after = trace(server, "poison")["hook"]
    assert after["status"] == "retrying" and after["first_failure"] == before["first_failure"]
    recorder.respond_with(Reply(200))
    sluice(server, "retrying", "retry")
    wait_for(lambda: trace(server, "poison-2")["hook"]["status"] == "delivered", timeout=15)
    wait_for(lambda: trace(server, "poison")["hook"]["status"] == "delivered", timeout=15)
    delivered = message_ids(recorder.requests)
    assert {f"ok-{i}" for i in range(20)} <= set(delivered)
    assert status(server, "hook")["retrying"] == 0


def test_a_partitioned_destination_retries_in_the_poison_users_partition(
    server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(failing("poison"))
    add_destination(server, webhook("hook", recorder, delivery={"partitions": 2}))
    users = [f"u{i}" for i in range(10)]
    send(server, track("poison", userId="u0"), *(track(f"ok-{u}", userId=u) for u in users))
    wait_for(lambda: {f"ok-{u}" for u in users} <= set(message_ids(recorder.requests)), 15)
    wait_for(lambda: message_ids(recorder.requests).count("poison") >= 3, timeout=15)
    (row,) = server.store.retrying("hook")
    assert row[1].message_id == "poison" and row[1].attempts >= 2
    recorder.respond_with(Reply(200))
    sluice(server, "retrying", "retry")
    wait_for(lambda: trace(server, "poison")["hook"]["status"] == "delivered", timeout=15)
    assert len([m for m in message_ids(recorder.requests) if m.startswith("ok-")]) == 10
