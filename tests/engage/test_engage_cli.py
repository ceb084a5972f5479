"""`sluice audiences list|show` and `sluice traits show` on a data dir Engage ran on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
from engage_kit import DAY, T0, Rig, definitions

from server import clean_env
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.base import ConfigObject
from sluice.store.sqlite import SqliteStore

TRAITS = [
    {"key": "orders", "kind": "count", "event": "Order Completed"},
    {"key": "spent", "kind": "sum", "event": "Order Completed", "property": "total"},
]
AUDIENCES = [
    {"key": "ordered_twice", "name": "Ordered twice",
     "condition": {"events": [{"event": "Order Completed", "count": 2, "within_days": 7}]}},
]  # fmt: skip


def sluice(data: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--json", "--data-dir", str(data)],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_commands_show_members_and_traits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    body = msgspec.json.encode({"computed_traits": TRAITS, "audiences": AUDIENCES})
    store.put_config(ConfigObject("engage", "engage", body))
    rig = Rig(store, SqliteIdentityDb(tmp_path / "identity.db"))
    try:
        consumer = rig.engage(definitions(TRAITS, AUDIENCES))
        for n in (1, 2):
            rig.send({"userId": "jane", "event": "Order Completed", "properties": {"total": n}},
                     at_ms=T0 + n * DAY)  # fmt: skip
        rig.send({"userId": "joe", "event": "Order Completed", "properties": {"total": 5}})
        rig.run(consumer)
    finally:
        rig.close()
    listed = sluice(tmp_path, "audiences", "list")
    assert listed["audiences"] == [{"key": "ordered_twice", "name": "Ordered twice", "members": 1}]
    # Judged at each event, even in one step: jane's two traits at each of her two orders,
    # joe's two, jane's flip (an identify and a track).
    assert listed["emitted"] == 2 * 2 + 2 + 2
    assert listed["outbox"] == 0
    shown = sluice(tmp_path, "audiences", "show", "ordered_twice")
    assert [m["user_id"] for m in shown["listed"]] == ["jane"]
    jane = sluice(tmp_path, "traits", "show", "user_id:jane")
    assert jane["computed_traits"] == {"orders": 2, "spent": 3}
    assert jane["audiences"] == {"ordered_twice": True}
    joe = sluice(tmp_path, "traits", "show", "user_id:joe")
    assert joe["computed_traits"] == {"orders": 1, "spent": 5}
    assert joe["audiences"] == {"ordered_twice": False}
