"""A chunk read in many pieces loads as one read at once: the lake sorts a chunk's events into
groups when it is planned (`LakeChunk._split`), across its pieces."""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_kit import T1, append, load, query

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse import loader


def _log(store: SqliteStore, not_json: bool) -> None:
    append(store, *({"type": "track", "event": f"E{i % 3}", "userId": f"u{i}"} for i in range(9)))
    append(store, {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    # the same messageId again, a piece later: dropped, as within a piece
    payload = b'{"messageId":"dup","type":"track","event":"E0","receivedAt":"%s"}' % T1.encode()
    events = [NewEvent("web", "dup", "track", "E0", 0, payload)] * 2
    if not_json:  # the chunk goes to the exact planner, every piece of it
        events.append(NewEvent("web", "bad", "track", "E1", 0, b'{"Warehouses": nope'))
    store.append(AppendBatch(events=events))
    append(store, *({"type": "page", "name": f"P{i}"} for i in range(5)))


@pytest.mark.parametrize("not_json", [False, True])
def test_a_chunk_in_pieces_loads_as_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, not_json: bool
) -> None:
    results = []
    for read_events in (loader.READ_EVENTS, 2):
        monkeypatch.setattr(loader, "READ_EVENTS", read_events)
        store = SqliteStore(tmp_path / f"log-{read_events}.db")
        _log(store, not_json)
        root = tmp_path / f"lake-{read_events}"
        report = load(store, root)
        rows = {
            table: sorted(
                query(root, f"SELECT id = 'dup', user_id, event_text FROM {table}"), key=str
            )
            for table in ("tracks", "e0", "e1")
        }
        rows["pages"] = sorted(query(root, "SELECT name FROM pages"))
        rows["users"] = query(root, "SELECT id, plan FROM users")
        results.append((report.events, report.total_rows, rows))
        store.close()
    assert results[0] == results[1]
    events, _, rows = results[0]
    assert events == 16 + not_json  # the repeated messageId is not counted
    assert len(rows["tracks"]) == 10 and sum(dup for dup, _, _ in rows["tracks"]) == 1
