"""`sluice status` shows each warehouse's load position, lag and discarded values."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore


def _sluice(data_dir: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def _track(message_id: str, seats: object) -> NewEvent:
    now = int(time.time() * 1000)
    event = {
        "type": "track",
        "event": "Signed Up",
        "userId": "u1",
        "messageId": message_id,
        "receivedAt": "2026-11-28T10:00:00.000Z",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "properties": {"seats": seats},
    }
    return NewEvent("web", message_id, "track", "Signed Up", now, msgspec.json.encode(event))


def test_status_shows_lag_before_and_discards_after_a_load(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.append(AppendBatch(events=[_track("a", 3), _track("b", "many")]))
    store.close()
    before = json.loads(_sluice(tmp_path, "status", "--json"))["warehouses"]
    assert before == {"default": {"type": "duckdb", "position": 0, "lag": 2, "discards": 0}}
    assert not (tmp_path / "warehouse.duckdb").exists()  # status creates nothing
    _sluice(tmp_path, "load")
    after = json.loads(_sluice(tmp_path, "status", "--json"))["warehouses"]["default"]
    assert after == {"type": "duckdb", "position": 2, "lag": 0, "discards": 1}
    assert "1 discarded values" in _sluice(tmp_path, "status")
