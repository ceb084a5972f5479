"""`sluice load`, `sluice warehouse widen` and `sluice warehouse discards`, run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

import sluice.cli.status  # registers the commands, as the next line does
import sluice.cli.warehouse  # noqa: F401
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


@pytest.fixture(params=["duckdb", "postgres"])
def capped_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A warehouse that makes 2 event tables per source."""
    settings: dict[str, Any] = {"max_event_tables": 2}
    if request.param == "postgres":
        settings["url"] = request.getfixturevalue("pg_url")
    return {"id": "main", "type": request.param, "settings": settings}


def test_warehouse_shows_the_event_names_past_the_cap(
    tmp_path: Path, capped_warehouse: dict[str, Any]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    names = ["Signed Up", "Clicked", "Viewed 1", "Viewed 2", "Viewed 3", "Viewed 4"]
    names += ["Viewed 5", "Viewed 6", "Viewed 2", "Viewed 2", "Viewed 3"]
    seed(
        data_dir,
        *[{"type": "track", "event": name} for name in names],
        warehouses=[capped_warehouse],
    )
    if capped_warehouse["type"] == "duckdb":
        result = run("warehouse", "--data-dir", str(data_dir))
        assert result.output == "main (duckdb): nothing loaded yet\n"
    loaded = run("load", "--data-dir", str(data_dir))
    assert loaded.exit_code == 0, loaded.output
    assert "9 events of 6 event names went to tracks only" in loaded.output
    result = run("warehouse", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    kind = capped_warehouse["type"]
    assert lines[:8] == [
        f"main ({kind}): at most 2 event tables per source (max_event_tables)",
        "  web: 2 event tables; 6 event names have no table of their own (capped at 2 event"
        " tables): their 9 events are in web.tracks only",
        "    Viewed 2          3 events  (table viewed_2)",
        "    Viewed 3          2 events  (table viewed_3)",
        "    Viewed 1          1 events  (table viewed_1)",
        "    Viewed 4          1 events  (table viewed_4)",
        "    Viewed 5          1 events  (table viewed_5)",
        "    ... 1 more: `sluice warehouse capped --warehouse main --schema web`",
    ]
    assert lines[8].startswith("  Why: a source makes at most 2 event tables")
    assert "raise the warehouse's settings.max_event_tables" in lines[8]
    listed = run("warehouse", "capped", "--json", "--data-dir", str(data_dir))
    assert listed.exit_code == 0, listed.output
    assert [msgspec.json.decode(line) for line in listed.output.splitlines()][:2] == [
        {"schema": "web", "event": "Viewed 2", "table": "viewed_2", "events": 3},
        {"schema": "web", "event": "Viewed 3", "table": "viewed_3", "events": 2},
    ]
    table = run("warehouse", "capped", "--schema", "web", "--data-dir", str(data_dir))
    assert "Viewed 6" in table.output and "max_event_tables is 2" in table.output
    assert (
        "every event name has its table"
        in run("warehouse", "capped", "--schema", "app", "--data-dir", str(data_dir)).output
    )
    status = run("status", "--data-dir", str(data_dir))
    assert (
        "warehouse main: 6 event names have no table of their own (max_event_tables): their 9"
        " events are in tracks only — `sluice warehouse capped`"
    ) in " ".join(status.output.split())
