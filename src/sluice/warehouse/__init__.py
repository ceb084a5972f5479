"""Loading the event log into warehouses with Segment's schema (see docs/warehouse.md).

`WarehouseLoader` (loader.py) reads the log from the warehouse's own position, `Planner`
(planner.py) turns events into typed `TableBatch`es using `flatten.py`, `naming.py` and
`types.py`, and a `WarehouseBackend` (base.py; `duckdb.py`, `postgres.py`) writes each chunk in
one transaction. `run_warehouses` is what the worker runs.
"""

from __future__ import annotations

from sluice.warehouse.base import (
    ColumnType,
    Discard,
    SchemaChangeError,
    TableBatch,
    WarehouseBackend,
    WarehouseError,
    WarehouseNotFound,
    WarehouseUnavailable,
)
from sluice.warehouse.factory import (
    DEFAULT_WAREHOUSE_ID,
    WarehouseConfig,
    find_warehouse,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)
from sluice.warehouse.loader import LoadReport, WarehouseLoader, loaders_for, run_warehouses

__all__ = [
    "DEFAULT_WAREHOUSE_ID",
    "ColumnType",
    "Discard",
    "LoadReport",
    "SchemaChangeError",
    "TableBatch",
    "WarehouseBackend",
    "WarehouseConfig",
    "WarehouseError",
    "WarehouseLoader",
    "WarehouseNotFound",
    "WarehouseUnavailable",
    "find_warehouse",
    "loaders_for",
    "open_backend",
    "parse_warehouse_config",
    "run_warehouses",
    "warehouse_bodies",
]
