"""`sluice status` shows each warehouse's load position, lag, discarded values, and the event
names that load into `tracks` only (the source had all its event tables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore


def _sluice(data_dir: Path, *args: str, **env: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")} | env,
    ).stdout


def _track(message_id: str, seats: object, name: str = "Signed Up") -> NewEvent:
    now = int(time.time() * 1000)
    event = {
        "type": "track",
        "event": name,
        "userId": "u1",
        "messageId": message_id,
        "receivedAt": "2026-11-28T10:00:00.000Z",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "properties": {"seats": seats},
    }
    return NewEvent("web", message_id, "track", name, now, msgspec.json.encode(event))


def test_status_shows_lag_before_and_discards_after_a_load(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.append(AppendBatch(events=[_track("a", 3), _track("b", "many")]))
    store.close()
    before = json.loads(_sluice(tmp_path, "status", "--json"))["warehouses"]
    assert before == {
        "default": {
            "type": "duckdb",
            "position": 0,
            "lag": 2,
            "discards": 0,
            "capped_names": 0,
            "capped_events": 0,
        }
    }
    assert not (tmp_path / "warehouse.duckdb").exists()  # status creates nothing
    _sluice(tmp_path, "load")
    after = json.loads(_sluice(tmp_path, "status", "--json"))["warehouses"]["default"]
    assert after == {
        "type": "duckdb",
        "position": 2,
        "lag": 0,
        "discards": 1,
        "capped_names": 0,
        "capped_events": 0,
    }
    assert "1 discarded values" in _sluice(tmp_path, "status")


def test_status_counts_the_event_names_past_the_cap(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    names = ["Signed Up", "Clicked", "Viewed", "Clicked", "Shared"]
    store.append(AppendBatch(events=[_track(f"m{i}", 1, n) for i, n in enumerate(names)]))
    store.close()
    _sluice(tmp_path, "load", SLUICE_WAREHOUSE_MAX_EVENT_TABLES="1")
    stats = json.loads(_sluice(tmp_path, "status", "--json"))["warehouses"]["default"]
    assert (stats["capped_names"], stats["capped_events"], stats["discards"]) == (3, 4, 3)
    assert "3 discarded values" in _sluice(tmp_path, "status")
    discards = _sluice(tmp_path, "warehouse", "discards", "--json").splitlines()
    assert sorted(json.loads(line)["value"] for line in discards) == ["Clicked", "Shared", "Viewed"]
