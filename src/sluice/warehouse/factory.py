"""Which warehouses a workspace loads into, and opening the backend each one names.

A workspace lists warehouses as `warehouse` config objects: `{"id", "type":
"duckdb"|"postgres"|"lake", "settings", "sources"}` (a lake is Parquet files: lake/). With none
listed, Sluice still loads everything into the default DuckDB
file `<data_dir>/warehouse.duckdb` (id `default`), so that a fresh `sluice serve` has tables to
query without any setup. Listing any warehouse replaces that default.

Backends are imported lazily: the PostgreSQL one needs its driver only when it is used.

Besides each backend's own settings (`path`, `url`), every warehouse takes `max_event_tables`:
the event tables it makes per source (default `SLUICE_WAREHOUSE_MAX_EVENT_TABLES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from sluice.store.base import EventStore
from sluice.warehouse.base import WarehouseBackend, WarehouseNotFound, WarehouseUnavailable
from sluice.workspace.model import MAX_EVENT_TABLES

DEFAULT_WAREHOUSE_ID = "default"
DEFAULT_DUCKDB_FILE = "warehouse.duckdb"
DEFAULT_LAKE_DIR = "lake"


@dataclass(frozen=True, slots=True)
class WarehouseConfig:
    """One warehouse of the workspace; `sources` empty means every source."""

    id: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()


def parse_warehouse_config(body: bytes) -> WarehouseConfig:
    """A warehouse config object's JSON body (as `sluice apply` stores it)."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise WarehouseUnavailable(f"warehouse config is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise WarehouseUnavailable("warehouse config has no string 'id'")
    settings = doc.get("settings") or {}
    sources = doc.get("sources") or []
    if not isinstance(settings, dict) or not isinstance(sources, list):
        raise WarehouseUnavailable(
            f"warehouse {doc['id']!r}: 'settings' must be a mapping and 'sources' a list"
        )
    cap = settings.get(MAX_EVENT_TABLES)
    if cap is not None and (type(cap) is not int or cap < 0):
        raise WarehouseUnavailable(
            f"warehouse {doc['id']!r}: settings.{MAX_EVENT_TABLES} must be a whole"
            f" number, 0 or more (got {cap!r})"
        )
    return WarehouseConfig(doc["id"], str(doc.get("type", "duckdb")), settings, tuple(sources))


def max_event_tables(config: WarehouseConfig, default: int) -> int:
    """The event tables the warehouse makes per source: its setting, else `default`."""
    cap = config.settings.get(MAX_EVENT_TABLES)
    return cap if type(cap) is int else default


def default_warehouse_body() -> bytes:
    return msgspec.json.encode({"id": DEFAULT_WAREHOUSE_ID, "type": "duckdb"})


def warehouse_bodies(store: EventStore) -> list[bytes]:
    """The config bodies of the workspace's warehouses, or the default warehouse's."""
    bodies = [obj.body for obj in store.list_config("warehouse")]
    return bodies or [default_warehouse_body()]


def find_warehouse(store: EventStore, warehouse_id: str | None) -> WarehouseConfig:
    """The warehouse with this id; without an id, the only one there is."""
    configs = [parse_warehouse_config(body) for body in warehouse_bodies(store)]
    ids = ", ".join(c.id for c in configs)
    if warehouse_id is None:
        if len(configs) == 1:
            return configs[0]
        raise WarehouseNotFound(
            f"the workspace has several warehouses ({ids}): pick one with --warehouse"
        )
    for config in configs:
        if config.id == warehouse_id:
            return config
    raise WarehouseNotFound(f"no warehouse {warehouse_id!r} in the workspace (warehouses: {ids})")


def duckdb_path(config: WarehouseConfig, data_dir: Path) -> Path:
    """`settings.path`, relative to the data directory; `<data_dir>/warehouse.duckdb` without it."""
    raw = config.settings.get("path") or DEFAULT_DUCKDB_FILE
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else data_dir / path


def lake_path(config: WarehouseConfig, data_dir: Path) -> Path:
    """A lake's `settings.path`, relative to the data directory; `<data_dir>/lake` without it."""
    raw = config.settings.get("path") or DEFAULT_LAKE_DIR
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else data_dir / path


def open_backend(config: WarehouseConfig, data_dir: Path) -> WarehouseBackend:
    """Open the warehouse a config names (the caller closes it)."""
    if config.type == "lake":
        from sluice.lake.config import open_lake

        return open_lake(config.id, lake_path(config, data_dir), config.settings)
    if config.type == "duckdb":
        from sluice.warehouse.duckdb import DuckDBBackend

        return DuckDBBackend(duckdb_path(config, data_dir))
    if config.type == "postgres":
        url = config.settings.get("url")
        if not isinstance(url, str) or not url:
            raise WarehouseUnavailable(
                f"warehouse {config.id!r} is PostgreSQL but has no settings.url"
                " (e.g. postgresql://user@host:5432/db)"
            )
        try:
            from sluice.warehouse.postgres import PostgresBackend
        except ImportError as exc:
            raise WarehouseUnavailable(
                f"warehouse {config.id!r}: the PostgreSQL backend cannot be imported ({exc})"
            ) from exc
        return PostgresBackend(url)
    raise WarehouseUnavailable(
        f"warehouse {config.id!r} has type {config.type!r}; expected duckdb, postgres or lake"
    )
