"""What the lake's tests share: a real event log, loads into a real lake, DuckDB reading it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from sluice.config import Settings
from sluice.lake.backend import LakeBackend
from sluice.lake.query import connect
from sluice.lake.storage import LocalStorage
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.loader import LoadReport, WarehouseLoader

T1 = "2026-11-28T10:00:00.123Z"
_ids = itertools.count(1)


def append(store: SqliteStore, *msgs: dict[str, Any], source: str = "web") -> list[str]:
    """Append normalised events (as the collector stores them); returns their messageIds."""
    events = []
    for msg in msgs:
        msg = {"messageId": f"m-{next(_ids)}", "receivedAt": T1, "timestamp": T1, **msg}
        payload = msgspec.json.encode(msg)
        events.append(NewEvent(source, msg["messageId"], msg["type"], msg.get("event"), 0, payload))
    store.append(AppendBatch(events=events))
    return [e.message_id for e in events]


def load(store: SqliteStore, root: Path, chunk: int = 50_000, **settings: Any) -> LoadReport:
    body = msgspec.json.encode({"id": "lake", "type": "lake", "settings": settings})
    compact_files = settings.get("compact_files", 0)

    def open_lake(_: Any) -> LakeBackend:
        return LakeBackend(LocalStorage(root), compact_files=compact_files)

    loader = WarehouseLoader(Settings(), store, body, backend_factory=open_lake, chunk_events=chunk)
    return loader.load_once()


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """SQL over the lake's views, as `sluice lake query` runs it."""
    with connect(LakeBackend(LocalStorage(root))) as db:
        return db.execute(sql).fetchall()


def raw(root: Path, folder: str, select: str = "SELECT count(*) FROM {t}") -> list[Any]:
    """`select` over every Parquet file of a folder (`web/tracks`), as any DuckDB user reads
    the lake with a glob: `{t}` is its `read_parquet`."""
    files = f"'{root}/{folder}/**/*.parquet'"
    source = f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        return db.execute(select.format(t=source)).fetchall()
