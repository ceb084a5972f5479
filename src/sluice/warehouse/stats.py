"""Warehouse stats for `sluice status`: how far each warehouse has loaded, its discards, and the
event names that load into `tracks` only because their source has all its event tables."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sluice.config import Settings
from sluice.store.base import EventStore
from sluice.store.base_workers import UnitStats
from sluice.warehouse.factory import (
    duckdb_path,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)

if TYPE_CHECKING:
    from sluice.warehouse.loader import LoadReport

log = logging.getLogger(__name__)
MAX_COUNTED_DISCARDS = 100_000
UNIT_PREFIX = "warehouse:"  # the unit name of a warehouse's reports in the store's unit stats


def record_load(store: UnitStats, warehouse_id: str, report: LoadReport | None) -> None:
    """Report one load (None: it failed) to the store, where `/metrics` reads it without opening
    the warehouse. A report that cannot be written is logged, never fails the load."""
    now_ms = int(time.time() * 1000)
    if report is None:
        add, set_to = {"load_failures": 1}, {"last_failure_ms": now_ms}
    else:
        add = {
            "loads": 1,
            "events": report.events,
            "rows": report.total_rows,
            "discards": report.discards,
            "load_ms": round(report.seconds * 1000),
        }
        set_to = {
            "position": report.position,
            "last_load_ms": now_ms,
            "last_duration_ms": round(report.seconds * 1000),
        }
    try:
        store.record_unit_stats(UNIT_PREFIX + warehouse_id, now_ms, add, set_to)
    except Exception as exc:
        log.warning(
            "warehouse %s: its load could not be reported for metrics: %s", warehouse_id, exc
        )


def warehouse_stats(settings: Settings, store: EventStore) -> dict[str, dict[str, Any]]:
    """Per warehouse: its load position, lag behind the log, discarded values; or why not."""
    log_end = store.last_seq()
    result: dict[str, dict[str, Any]] = {}
    for body in warehouse_bodies(store):
        try:
            config = parse_warehouse_config(body)
        except Exception as exc:  # a stored object that cannot be read: say so, go on
            result[f"(unreadable {len(result)})"] = {"error": str(exc)}
            continue
        if config.type == "duckdb" and not duckdb_path(config, settings.data_dir).exists():
            result[config.id] = {
                "type": config.type,
                "position": 0,
                "lag": log_end,
                "discards": 0,
                "capped_names": 0,
                "capped_events": 0,
            }
            continue
        try:
            backend = open_backend(config, settings.data_dir)
            try:
                position = backend.position(config.id)
                discards = len(backend.discards(MAX_COUNTED_DISCARDS))
                capped = backend.capped_events()
            finally:
                backend.close()
        except Exception as exc:  # e.g. DuckDB's file is locked by a load in progress
            result[config.id] = {"type": config.type, "error": str(exc)}
            continue
        result[config.id] = {
            "type": config.type,
            "position": position,
            "lag": max(log_end - position, 0),
            "discards": discards,
            # Event names with no table of their own (max_event_tables), and their tracks.
            "capped_names": len(capped),
            "capped_events": sum(c.events for c in capped),
        }
    return result
