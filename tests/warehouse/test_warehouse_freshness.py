"""`sluice serve` loads the warehouse by itself: an event is queryable within the interval."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import duckdb

from server import WRITE_KEY, SluiceServer, basic, wait_for

StartServer = Callable[..., SluiceServer]


def _rows(server: SluiceServer) -> list[tuple[object, ...]]:
    path = server.data_dir / "warehouse.duckdb"
    if not path.exists():
        return []
    with contextlib.suppress(duckdb.Error):  # the loader holds the file while it loads
        db = duckdb.connect(str(path), read_only=True)
        try:
            return db.sql("SELECT id, user_id, plan FROM web.signed_up").fetchall()
        finally:
            db.close()
    return []


def test_an_event_reaches_the_default_duckdb_warehouse(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "1"})
    event = {
        "userId": "u1",
        "event": "Signed Up",
        "messageId": "fresh-1",
        "properties": {"plan": "pro"},
    }
    sent = time.monotonic()
    res = server.post("/v1/track", event, headers={"authorization": basic(WRITE_KEY)})
    assert res.status == 200
    wait_for(
        lambda: _rows(server) == [("fresh-1", "u1", "pro")], timeout=30, what="the warehouse row"
    )
    assert time.monotonic() - sent < 30
