"""`sluice lake query|compact|status` in-process, and a lake loaded by a running server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import msgspec
from lake_kit import T1
from typer.testing import CliRunner

import sluice.cli.lake
import sluice.cli.warehouse  # noqa: F401  (register the commands)
from server import WRITE_KEY, SluiceServer, basic, seed_sources, wait_for
from sluice.cli.app import app
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.sqlite import SqliteStore

LAKE = {"id": "lake", "type": "lake", "settings": {"path": "my-lake"}}


def _seed(data_dir: Path, n: int) -> None:
    store = SqliteStore(data_dir / "log.db")
    try:
        events = []
        for k in range(n):
            body: dict[str, Any] = {"messageId": f"c-{k}", "receivedAt": T1, "type": "track"}
            body |= {"event": "Paid", "properties": {"amount": k}}
            events.append(NewEvent("web", f"c-{k}", "track", "Paid", 0, msgspec.json.encode(body)))
        store.append(AppendBatch(events=events))
        store.put_config(ConfigObject("warehouse", "lake", msgspec.json.encode(LAKE)))
    finally:
        store.close()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=True)


def test_load_then_query_compact_and_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _seed(data, 3)
    loaded = run("load", "--data-dir", str(data))
    assert loaded.exit_code == 0, loaded.output
    assert (data / "my-lake" / "web" / "paid").is_dir()
    result = run("lake", "query", "SELECT count(*) AS n FROM tracks", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert "3" in result.output and "1 row" in result.output
    as_json = run(
        "lake", "query", "SELECT id, amount FROM web.paid ORDER BY id", "--json",
        "--data-dir", str(data),
    )  # fmt: skip
    lines = [msgspec.json.decode(line) for line in as_json.output.splitlines()]
    assert lines == [{"id": f"c-{k}", "amount": k} for k in range(3)]
    _seed(data, 0)
    store = SqliteStore(data / "log.db")
    try:
        body = {"messageId": "c-9", "receivedAt": T1, "type": "track", "event": "Paid"}
        event = NewEvent("web", "c-9", "track", "Paid", 0, msgspec.json.encode(body))
        store.append(AppendBatch(events=[event]))
    finally:
        store.close()
    run("load", "--data-dir", str(data))
    compacted = run("lake", "compact", "--data-dir", str(data))
    assert compacted.exit_code == 0, compacted.output
    assert "2 partitions compacted: 4 files merged into 2" in compacted.output
    status = run("lake", "status", "--json", "--data-dir", str(data))
    doc = msgspec.json.decode(status.output)
    assert doc["position"] == 4
    assert doc["collections"] == {
        "web.paid": {"files": 1, "rows": 4},
        "web.tracks": {"files": 1, "rows": 4},
    }
    by_path = run(
        "lake", "query", "SELECT count(*) FROM paid", "--json", "--path", str(data / "my-lake")
    )
    assert msgspec.json.decode(by_path.output) == {"count_star()": 4}


def test_query_errors_say_what_is_wrong(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _seed(data, 1)
    run("load", "--data-dir", str(data))
    bad = run("lake", "query", "SELECT nope FROM tracks", "--data-dir", str(data))
    assert bad.exit_code == 1 and "nope" in bad.output
    other = run("lake", "query", "SELECT 1", "--warehouse", "other", "--data-dir", str(data))
    assert other.exit_code != 0
    assert "no lake warehouse 'other'" in str(other.exception)


StartServer = Callable[..., SluiceServer]


def test_a_running_server_loads_the_lake(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "served"
    seed_sources(data)
    store = SqliteStore(data / "log.db")
    try:
        store.put_config(ConfigObject("warehouse", "lake", msgspec.json.encode(LAKE)))
    finally:
        store.close()
    server = start_server(
        {"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "1"}, data_dir=data
    )
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": f"s-{k}",
             "properties": {"plan": "pro", "seats": k}}
            for k in range(5)
        ]
    }  # fmt: skip
    res = server.post("/v1/batch", batch, headers={"authorization": basic(WRITE_KEY)})
    assert res.status == 200
    root = data / "my-lake"

    def rows() -> list[Any]:
        if not (root / "_sluice" / "manifest.json").exists():
            return []
        from lake_kit import query

        try:
            return query(root, "SELECT id, user_id, plan, seats FROM web.signed_up ORDER BY id")
        except duckdb.CatalogException:  # the manifest of a load not committed yet (pending)
            return []

    started = time.monotonic()
    found = wait_for(lambda: len(rows()) == 5 and rows(), timeout=30, what="the lake's rows")
    assert found == [(f"s-{k}", "u1", "pro", k) for k in range(5)]
    assert time.monotonic() - started < 30
