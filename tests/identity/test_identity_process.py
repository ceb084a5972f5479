"""The consumer as users run it: a real store, a consumer process killed with SIGKILL in the
middle of its work then resumed (the same tables as one clean run), and the commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from identity_kit import SPACE, snapshot

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.spec.timestamps import format_ms
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SLUICE = [sys.executable, "-m", "sluice"]
CONSUMER = """
import sys
from pathlib import Path
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.sqlite import SqliteStore
data = Path(sys.argv[1])
db = SqliteIdentityDb(data / sys.argv[2], background_checkpoints=True)  # as the worker runs it
consumer = IdentityConsumer(SqliteStore(data / "log.db"), db,
                            "default", rules_from(None), step_events=int(sys.argv[3]))
consumer.prepare()
consumer.run_until_caught_up()
"""


def fill(data: Path, events: int) -> None:
    store = SqliteStore(data / "log.db")
    rows = []
    for i in range(events):
        body = {
            "type": "identify" if i % 3 == 0 else "track",
            "messageId": f"m{i}",
            "anonymousId": f"anon-{i % 997}",
            "userId": f"user-{i % 613}" if i % 2 else None,
            "traits": {"email": f"u{i % 401}@x.io", "n": i},
            "timestamp": "2026-12-01T00:00:00.000Z",
        }
        payload = msgspec.json.encode(body)
        rows.append(NewEvent("web", f"m{i}", body["type"], None, 1_765_000_000_000 + i, payload))  # type: ignore[arg-type]
    for start in range(0, events, 5000):
        store.append(AppendBatch(events=rows[start : start + 5000]))
    store.close()


def position(path: Path) -> int:
    if not path.exists():
        return 0
    db = SqliteIdentityDb(path)
    try:
        rows = db.execute("SELECT seq FROM identity_position")
        return int(rows[0][0]) if rows else 0
    finally:
        db.close()


def test_kill_9_mid_step_then_resume_gives_the_same_tables(tmp_path: Path) -> None:
    events = 12_000
    fill(tmp_path, events)
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, str(tmp_path), "killed.db", "50"])
    try:
        deadline = time.monotonic() + 60
        while position(tmp_path / "killed.db") < 1000 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    stopped_at = position(tmp_path / "killed.db")
    assert 0 < stopped_at < events, "the kill must land mid-way"
    store = SqliteStore(tmp_path / "log.db")
    killed, clean = SqliteIdentityDb(tmp_path / "killed.db"), SqliteIdentityDb(tmp_path / "c.db")
    try:
        for db, step in ((killed, 333), (clean, 5000)):
            consumer = IdentityConsumer(store, db, SPACE, rules_from(None), step_events=step)
            consumer.prepare()
            consumer.run_until_caught_up()
        assert snapshot(killed) == snapshot(clean)
        assert snapshot(clean)["identity_position"][0][0] == events
    finally:
        killed.close()
        clean.close()
        store.close()


def sluice(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_apply_rebuild_status_and_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ws = tmp_path / "ws.yaml"
    ws.write_text("sources: [{id: web}]\nidentity:\n  id_types: [{type: email, limit: 0}]\n")
    refused = sluice("apply", str(ws), data=data)
    assert refused.returncode != 0 and "identity.id_types[0].limit" in refused.stderr
    ws.write_text("sources: [{id: web}]\nidentity:\n  id_types: [{type: email, limit: 2}]\n")
    assert sluice("apply", str(ws), data=data).returncode == 0
    store = SqliteStore(data / "log.db")
    bodies = [
        {"type": "page", "anonymousId": "anon-1", "timestamp": "2026-12-01T10:00:00.000Z"},
        {"type": "identify", "anonymousId": "anon-1", "userId": "jane",
         "traits": {"email": "jane@x.io", "plan": "pro"}, "timestamp": "2026-12-01T10:01:00.000Z"},
        {"type": "page", "anonymousId": "anon-2", "timestamp": "2026-12-01T10:02:00.000Z"},
        {"type": "track", "anonymousId": "anon-2", "event": "Ordered",
         "context": {"traits": {"email": "jane@x.io"}}, "timestamp": "2026-12-01T10:03:00.000Z"},
        {"type": "page", "anonymousId": "anon-1", "timestamp": "2026-12-01T15:00:00.000Z"},
    ]  # fmt: skip
    received = [1_765_000_000_000 + i for i in range(4)] + [1_765_000_000_000 + 5 * 3_600_000]
    store.append(AppendBatch(events=[
        NewEvent("web", f"m{i}", b["type"], b.get("event"), at,  # type: ignore[arg-type]
                 msgspec.json.encode(b))
        for i, (b, at) in enumerate(zip(bodies, received, strict=True))
    ]))  # fmt: skip
    store.close()
    rebuilt = sluice("identity", "rebuild", data=data)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt: 5 events, 1 merges" in rebuilt.stderr
    shown = sluice("profiles", "show", "email:jane@x.io", "--json", data=data)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert {(i["type"], i["id"]) for i in doc["external_ids"]} == {
        ("anonymous_id", "anon-1"), ("anonymous_id", "anon-2"), ("user_id", "jane"),
        ("email", "jane@x.io"),
    }  # fmt: skip
    assert [e["seq"] for e in doc["events"]] == [5, 4, 3, 2, 1]
    # A returning visitor rewrites no row of the graph: "updated" is read from its last event,
    # and "last seen" is kept only for types whose limit has a window (none here).
    assert doc["updated_at"] == format_ms(received[-1])
    assert {i["last_seen_ms"] for i in doc["external_ids"]} == {None}
    assert {t["key"]: t["value"] for t in doc["traits"]} == {"email": "jane@x.io", "plan": "pro"}
    [merge] = doc["merges"]
    assert merge["seq"] == 4 and "email=jane@x.io" in merge["reason"]
    text = sluice("profiles", "show", "user_id:jane", data=data)
    assert "Merges" in text.stdout and doc["profile_id"] in text.stdout
    missing = sluice("profiles", "show", "user_id:nobody", data=data)
    assert missing.returncode == 1 and "no profile has user_id:nobody" in missing.stderr
    status = json.loads(sluice("identity", "status", "--json", data=data).stdout)
    assert status["position"] == 5 and status["profiles"] == 1 and status["merges"] == 1
    assert status["rules_current"] is True
    exported = subprocess.run([*SLUICE, "export", "--data-dir", str(data)], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
    assert "identity:" in exported and "limit: 2" in exported
