"""Events no consumer can use, stored as if acknowledged (by an older version, another tool, a
bug): every consumer treats each as that event's failure and keeps flowing.

The collector refuses or cleans such input now (tests/collector/test_hostile_input.py); the log
may still hold them, so destinations park them with the error, the warehouse discards them, the
archive keeps them, and `sluice events` / `sluice trace` still print.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb
from delivery_kit import StartServer, add_destination, message_ids, sluice, webhook

from recorder import Recorder
from server import SluiceServer, wait_for
from sluice.store.base import AppendBatch, NewEvent

WORKER_PROCESSES = ("sluice-worker", "sluice-delivery", "sluice-batch")
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

    wait_for(
        lambda: {*good, "m"} <= _warehouse_ids(server), timeout=60, what="the warehouse past them"
    )


def _warehouse_ids(server: SluiceServer) -> set[str]:
    try:
        with duckdb.connect(str(server.data_dir / "warehouse.duckdb"), read_only=True) as db:
            rows = db.execute("SELECT id FROM web.tracks").fetchall()
    except duckdb.Error:
        return set()
    return {r[0] for r in rows}


def _worker_rss_kib(group: int) -> int:
    """Resident memory of the server's worker processes (its supervisor and lanes), from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            if (entry / "comm").read_text().strip() not in WORKER_PROCESSES:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    assert total, "no worker process in the server's group"
    return total


def test_memory_stays_flat_while_hostile_events_keep_arriving(
    start_server: StartServer, recorder: Recorder
) -> None:
    """The stall of the original report grew the worker's memory; now hostile events are each
    one failure: twenty more rounds of the corpus leave the worker's memory where one round did."""
    server = start_server(
        {
            "SLUICE_WORKERS": "1",
            "SLUICE_WAREHOUSE_INTERVAL_S": "1",
            "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1",
        }
    )
    add_destination(server, webhook("hook", recorder))
    assert server.proc is not None
    group = server.proc.pid

    def store_round(n: int) -> str:
        now = int(time.time() * 1000)
        batch = AppendBatch()
        for message_id, payload in HOSTILE.items():
            hostile_id = f"{message_id}-{n}"
            batch.events.append(
                event(hostile_id, payload.replace(message_id.encode(), hostile_id.encode()), now)
            )
        ok = f"good-{n}"
        body = {"type": "track", "event": "E", "userId": "u", "messageId": ok}
        batch.events.append(event(ok, json.dumps(body).encode(), now))
        server.store.append(batch)
        return ok

    def settled(ok: str) -> None:
        wait_for(lambda: ok in message_ids(recorder.requests), timeout=30, what=ok)
        last = server.store.last_seq()
        wait_for(lambda: server.store.cursors().get("archive", 0) >= last, timeout=30)

    for n in range(3):  # warm up: every consumer has met every kind of hostile event
        settled(store_round(n))
    before = _worker_rss_kib(group)
    for n in range(3, 23):
        last_good = store_round(n)
        settled(last_good)
    after = _worker_rss_kib(group)
    print(f"worker RSS {before} KiB -> {after} KiB over 20 rounds")
    parked = sluice(server, "parked", "list", "--json", "--limit", "1000").splitlines()
    assert len(parked) >= 22 * len(HOSTILE)  # the last round may still be parking
    assert after - before < 16 * 1024, f"worker grew from {before} KiB to {after} KiB"
    wait_for(lambda: last_good in _warehouse_ids(server), timeout=60, what="the warehouse")
