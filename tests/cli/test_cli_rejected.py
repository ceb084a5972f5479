"""`sluice rejected` shows refused items with their reason, from the store a server writes to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sluice.store.base import AppendBatch
from sluice.store.base_event_store import Rejection
from sluice.store.sqlite import SqliteStore


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", "rejected", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def _seed(data_dir: Path) -> None:
    store = SqliteStore(data_dir / "log.db")
    try:
        store.append(
            AppendBatch(
                rejections=[
                    Rejection("web", "missing_event", "no event", 1_700_000_000_000, b'{"a":1}'),
                    Rejection("app", "invalid_type", "bad type", 1_700_000_001_000, b'{"b":2}'),
                ]
            )
        )
    finally:
        store.close()


def test_json_lines_oldest_first(tmp_path: Path) -> None:
    _seed(tmp_path)
    lines = [
        json.loads(line) for line in _run("--json", "--data-dir", str(tmp_path)).stdout.splitlines()
    ]
    assert [(x["source"], x["reason"], x["item"]) for x in lines] == [
        ("web", "missing_event", '{"a":1}'),
        ("app", "invalid_type", '{"b":2}'),
    ]
    assert lines[0]["receivedAt"] == "2023-11-14T22:13:20.000Z"


def test_filter_by_source_and_pretty_output(tmp_path: Path) -> None:
    _seed(tmp_path)
    out = _run("--source", "app", "--data-dir", str(tmp_path)).stdout
    assert "invalid_type" in out and "bad type" in out and '{"b":2}' in out
    assert "missing_event" not in out
