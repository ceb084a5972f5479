"""`sluice load`, `sluice warehouse widen` and `sluice warehouse discards`, run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

import sluice.cli.warehouse  # noqa: F401  (registers the commands)
from sluice.cli.app import app
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.base import SchemaChangeError, WarehouseNotFound

T1 = "2026-11-28T10:00:00.123Z"


def seed(data_dir: Path, *msgs: dict[str, Any], warehouses: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    store = SqliteStore(data_dir / "log.db")
    try:
        events = []
        for n, msg in enumerate(msgs):
            body = {"messageId": f"cli-{n}", "receivedAt": T1, **msg}
            events.append(
                NewEvent("web", body["messageId"], msg["type"], None, 0, msgspec.json.encode(body))
            )
        store.append(AppendBatch(events=events))
        for w in warehouses:
            store.put_config(ConfigObject("warehouse", w["id"], msgspec.json.encode(w)))
    finally:
        store.close()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    seed(
        path,
        {"type": "track", "event": "Paid", "properties": {"amount": 10}},
        {"type": "track", "event": "Paid", "properties": {"amount": 10.5}},
    )
    return path


def test_load_prints_rows_per_table(data_dir: Path) -> None:
    result = run("load", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "default: 2 events read" in result.output
    assert "web.paid" in result.output and "web.tracks" in result.output
    assert "1 discarded values" in result.output
    assert (data_dir / "warehouse.duckdb").exists()
    again = run("load", "--data-dir", str(data_dir))
    assert "0 events read (log position 2 → 2)" in again.output


def test_discards_then_widen(data_dir: Path) -> None:
    run("load", "--data-dir", str(data_dir))
    result = run("warehouse", "discards", "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    record = msgspec.json.decode(line)
    assert {k: record[k] for k in ("schema", "table", "column", "row_id", "value")} == {
        "schema": "web",
        "table": "paid",
        "column": "amount",
        "row_id": "cli-1",
        "value": "10.5",
    }
    table = run("warehouse", "discards", "--data-dir", str(data_dir))
    assert "web.paid" in table.output and "10.5" in table.output
    widened = run(
        "warehouse",
        "widen",
        "paid",
        "amount",
        "float",
        "--schema",
        "web",
        "--data-dir",
        str(data_dir),
    )
    assert widened.exit_code == 0, widened.output
    assert "default: web.paid.amount is now float" in widened.output


def test_errors_name_what_is_wrong(data_dir: Path) -> None:
    run("load", "--data-dir", str(data_dir))
    result = run(
        "warehouse",
        "widen",
        "paid",
        "amount",
        "boolean",
        "--schema",
        "web",
        "--data-dir",
        str(data_dir),
    )
    assert isinstance(result.exception, SchemaChangeError)
    assert "from integer to boolean" in str(result.exception)
    result = run("warehouse", "widen", "paid", "amount", "float", "--data-dir", str(data_dir))
    assert isinstance(result.exception, SchemaChangeError)
    assert "--schema" in str(result.exception)
    result = run("load", "--warehouse", "nope", "--data-dir", str(data_dir))
    assert isinstance(result.exception, WarehouseNotFound)
    assert "no warehouse 'nope'" in str(result.exception) and "default" in str(result.exception)


def test_workspace_warehouses_replace_the_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    seed(
        data_dir,
        {"type": "track", "event": "Signed Up"},
        warehouses=[
            {"id": "main", "type": "duckdb", "settings": {"path": "main.duckdb"}},
            {"id": "other", "type": "duckdb", "settings": {"path": str(tmp_path / "other.duckdb")}},
        ],
    )
    result = run("load", "--warehouse", "main", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert (data_dir / "main.duckdb").exists()
    assert not (tmp_path / "other.duckdb").exists()
    assert not (data_dir / "warehouse.duckdb").exists()
    result = run("warehouse", "discards", "--data-dir", str(data_dir))
    assert isinstance(result.exception, WarehouseNotFound)  # two warehouses: which one?
    result = run("load", "--data-dir", str(data_dir))
    assert (tmp_path / "other.duckdb").exists()
