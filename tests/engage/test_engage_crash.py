"""Exactly once under SIGKILL: a process running the Engage consumer (steps and outbox
flushes) is killed mid-way, then resumed; every audience flip is in the log once, with the same
messageIds as a clean run's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
from engage_kit import SPACE, T0, definitions

from sluice.engage.consumer import EngageConsumer
from sluice.engage.emit import flush
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.workspace.model_engage import ENGAGE_SOURCE_ID

USERS = 400
TRAITS = [{"key": "orders", "kind": "count", "event": "Order Completed"}]
AUDIENCES = [{"key": "ordered_twice", "condition": {"events": [
    {"event": "Order Completed", "count": 2, "within_days": 7}]}}]  # fmt: skip
WORKER = """
import sys, msgspec
from pathlib import Path
from sluice.engage.consumer import EngageConsumer
from sluice.engage.definitions import compile_definitions
from sluice.engage.emit import flush
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.sqlite import SqliteStore
from sluice.workspace.model import Audience, ComputedTrait
data = Path(sys.argv[1])
traits, audiences = msgspec.json.decode(sys.argv[2])
defs = compile_definitions(msgspec.convert(traits, list[ComputedTrait]),
                           msgspec.convert(audiences, list[Audience]))
store, db = SqliteStore(data / "log.db"), SqliteIdentityDb(data / "identity.db")
consumer = EngageConsumer(store, db, "default", defs, step_events=10)
consumer.prepare()
while consumer.step():
    flush(db, store, "default")
flush(db, store, "default")
"""


def fill(data: Path) -> None:
    data.mkdir()
    store = SqliteStore(data / "log.db")
    db = SqliteIdentityDb(data / "identity.db")
    # Set up before the events arrive: they are all sent as they happen.
    EngageConsumer(store, db, SPACE, definitions(TRAITS, AUDIENCES)).prepare()
    rows = []
    for n in range(2):
        for u in range(USERS):
            body = {"type": "track", "event": "Order Completed", "userId": f"user-{u}",
                    "messageId": f"o{n}-{u}"}  # fmt: skip
            rows.append(NewEvent("web", body["messageId"], "track", body["event"], T0 + n * 1000,
                                 msgspec.json.encode(body)))  # fmt: skip
    store.append(AppendBatch(events=rows))
    identity = IdentityConsumer(store, db, SPACE, rules_from(None))
    identity.prepare()
    identity.run_until_caught_up()
    db.close()
    store.close()


def engage_seq(data: Path) -> int:
    db = SqliteIdentityDb(data / "identity.db")
    try:
        rows = db.execute("SELECT seq FROM engage_position")
        return int(rows[0][0]) if rows else 0
    except Exception:
        return 0
    finally:
        db.close()


def finish(data: Path) -> list[str]:
    """Runs the consumer to the end; the message ids of engage's events in the log."""
    store, db = SqliteStore(data / "log.db"), SqliteIdentityDb(data / "identity.db")
    try:
        consumer = EngageConsumer(store, db, SPACE, definitions(TRAITS, AUDIENCES), 10)
        consumer.prepare()
        consumer.run_until_caught_up()
        flush(db, store, SPACE)
        return [e.message_id for e in store.read_after(0, 10**6) if e.source_id == ENGAGE_SOURCE_ID]
    finally:
        db.close()
        store.close()


def test_sigkill_mid_step_emits_each_flip_once(tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    fill(killed)
    shutil.copytree(killed, clean)
    arg = msgspec.json.encode([TRAITS, AUDIENCES]).decode()
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(killed), arg])
    try:
        deadline = time.monotonic() + 120
        while engage_seq(killed) < USERS + 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    stopped = engage_seq(killed)
    assert USERS < stopped < 2 * USERS, "the kill must land while audiences are being entered"
    resumed = finish(killed)
    expected = finish(clean)
    assert len(expected) == USERS * 4  # orders 1, orders 2, identify + track of the audience
    assert Counter(resumed) == Counter(expected)
    assert max(Counter(resumed).values()) == 1
