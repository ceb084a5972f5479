"""Events no consumer can use, stored as if acknowledged (by an older version, another tool, a
bug): every consumer treats each as that event's failure and keeps flowing.

The collector refuses or cleans such input now (tests/collector/test_hostile_input.py); the log
may still hold them, so destinations park them with the error, the warehouse discards them, the
archive keeps them, and `sluice events` / `sluice trace` still print.
"""

from __future__ import annotations

import json
import time

import duckdb
from delivery_kit import StartServer, add_destination, message_ids, sluice, webhook

from recorder import Recorder
from server import wait_for
from sluice.store.base import AppendBatch, NewEvent

HOSTILE: dict[str, bytes] = {
    "h-inf": b'{"type":"track","event":"E","userId":"u","messageId":"h-inf",'
    b'"properties":{"x":1e999}}',
    "h-utf8": b'{"type":"track","event":"E","userId":"u","messageId":"h-utf8",'
    b'"properties":{"x":"\xff\xfe"}}',
    "h-surrogate": b'{"type":"track","event":"E","userId":"u","messageId":"h-surrogate",'
    b'"properties":{"x":"\\ud83c"}}',
    "h-deep": b'{"type":"track","event":"E","userId":"u","messageId":"h-deep","properties":{"x":'
    + b"[" * 3000
    + b"]" * 3000
    + b"}}",
    "h-garbage": b"not json at all",
    "h-array": b"[1,2,3]",
}


def event(message_id: str, payload: bytes, at: int) -> NewEvent:
    return NewEvent("web", message_id, "track", "E", at, payload)


def test_hostile_stored_events_never_stall_a_consumer(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = start_server(
        {
            "SLUICE_WORKERS": "1",
            "SLUICE_WAREHOUSE_INTERVAL_S": "1",
            "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1",
        }
    )
    add_destination(server, webhook("hook", recorder))
    now = int(time.time() * 1000)
    batch = AppendBatch()
    good = []
    for i, (message_id, payload) in enumerate(HOSTILE.items()):
        ok = f"good-{i}"
        good.append(ok)
        body = {
            "type": "track",
            "event": "E",
            "userId": "u",
            "messageId": ok,
            "receivedAt": "2026-01-01T00:00:00.000Z",
            "timestamp": "2026-01-01T00:00:00.000Z",
        }
        batch.events.append(event(ok, json.dumps(body).encode(), now))  # fmt: skip
        batch.events.append(event(message_id, payload, now))
    server.store.append(batch)
    # Delivery: every good event arrives, every hostile one is parked with the error.
    wait_for(lambda: set(good) <= set(message_ids(recorder.requests)), timeout=20)
    parked = [json.loads(line) for line in sluice(server, "parked", "list", "--json").splitlines()]
    wait_for(
        lambda: len(sluice(server, "parked", "list", "--json").splitlines()) == len(HOSTILE), 10
    )
    parked = [json.loads(line) for line in sluice(server, "parked", "list", "--json").splitlines()]
    assert {p["messageId"] for p in parked} == set(HOSTILE)
    assert all(p["reason"].startswith("unreadable_event: ") for p in parked)
    # Later events still flow.
    server.post("/v1/track", {"type": "track", "event": "After", "userId": "u", "messageId": "m"})
    wait_for(lambda: "m" in message_ids(recorder.requests), timeout=10)
    # The CLI prints every one of them as valid JSON.
    printed = sluice(server, "events", "--json", "--limit", "50").splitlines()
    assert len(printed) == 2 * len(HOSTILE) + 1
    for line in printed:
        json.loads(line)
    for message_id in HOSTILE:
        report = json.loads(sluice(server, "trace", message_id, "--json"))
        (hop,) = report["found"][0]["destinations"]
        assert hop["status"] == "parked"
    # The archive and the warehouse go past them.
    last = server.store.last_seq()
    wait_for(lambda: server.store.cursors().get("archive", 0) >= last, timeout=30)

    def loaded() -> set[str]:
        try:
            with duckdb.connect(str(server.data_dir / "warehouse.duckdb"), read_only=True) as db:
                rows = db.execute("SELECT id FROM web.tracks").fetchall()
        except duckdb.Error:
            return set()
        return {r[0] for r in rows}

    wait_for(lambda: {*good, "m"} <= loaded(), timeout=60, what="the warehouse past them")
